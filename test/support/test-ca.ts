/**
 * A throwaway certificate authority for tests, and server certificates it signs (openssl: node:crypto cannot issue
 * X.509). For peers served over TLS with a private CA: the GitHub simulator as a GHES, the pod identity webhook.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

export interface TestCa {
  /** PEM of the CA certificate: what clients must trust. */
  readonly cert: string;
  readonly certPath: string;
  /** A serving certificate for these names (IP addresses or DNS names), signed by the CA. */
  issue(names: readonly string[], commonName?: string): ServerCertificate;
  /** Deletes the key material. */
  remove(): void;
}

export interface ServerCertificate {
  readonly cert: string;
  readonly key: string;
  readonly certPath: string;
  readonly keyPath: string;
}

const openssl = (args: string[], cwd: string) =>
  execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });

const EC = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];

export function createTestCa(name = 'runner-fleet-test-ca'): TestCa {
  const dir = mkdtempSync(path.join(tmpdir(), 'rf-test-ca-'));
  openssl(
    ['req', '-x509', ...EC, '-keyout', 'ca.key', '-out', 'ca.crt', '-days', '2', '-subj', `/CN=${name}`],
    dir,
  );
  let serial = 0;
  return {
    cert: readFileSync(path.join(dir, 'ca.crt'), 'utf8'),
    certPath: path.join(dir, 'ca.crt'),
    issue(names, commonName = names[0] ?? 'server') {
      const id = `server-${++serial}`;
      openssl(
        ['req', '-new', ...EC, '-keyout', `${id}.key`, '-out', `${id}.csr`, '-subj', `/CN=${commonName}`],
        dir,
      );
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      writeFileSync(
        path.join(dir, `${id}.ext`),
        [
          'basicConstraints=critical,CA:FALSE',
          'keyUsage=critical,digitalSignature,keyEncipherment',
          'extendedKeyUsage=serverAuth',
          `subjectAltName=${san}`,
          '',
        ].join('\n'),
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${id}.csr`,
          '-CA',
          'ca.crt',
          '-CAkey',
          'ca.key',
          '-CAcreateserial',
          '-out',
          `${id}.crt`,
          '-days',
          '2',
          '-extfile',
          `${id}.ext`,
        ],
        dir,
      );
      return {
        cert: readFileSync(path.join(dir, `${id}.crt`), 'utf8'),
        key: readFileSync(path.join(dir, `${id}.key`), 'utf8'),
        certPath: path.join(dir, `${id}.crt`),
        keyPath: path.join(dir, `${id}.key`),
      };
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
