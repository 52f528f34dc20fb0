/**
 * Every secret of an end-to-end run, as the simulator issued or holds it, and a scanner that looks for them (and for
 * distinctive pieces of them) in log text. Issued secrets come from the simulator's recorded REST exchanges: JIT
 * configs (and the runner private key inside them), registration and remove tokens, installation tokens.
 */
import type { Simulator } from '../../src/sim/github/index.js';

export interface Secret {
  readonly kind: string;
  readonly value: string;
}

function decodeJitConfig(encoded: string): Record<string, string> {
  try {
    const files = JSON.parse(Buffer.from(encoded, 'base64').toString('utf8')) as Record<string, string>;
    return Object.fromEntries(
      Object.entries(files).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
    );
  } catch {
    return {};
  }
}

/** Secrets the simulator handed out over REST, plus the ones it was configured with. */
export function simulatorSecrets(sim: Simulator): Secret[] {
  const out = new Map<string, Secret>();
  const add = (kind: string, value: unknown): void => {
    if (typeof value === 'string' && value.length >= 8 && !out.has(value)) out.set(value, { kind, value });
  };
  add('app private key', sim.privateKeyPem);
  add('webhook secret', sim.webhookSecret);
  add('personal access token', sim.token);
  for (const x of sim.recordedExchanges()) {
    if (x.status >= 300 || x.responseBody === undefined) continue;
    const template = x.template ?? '';
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(x.responseBody) as Record<string, unknown>;
    } catch {
      continue;
    }
    if (template.endsWith('/generate-jitconfig')) {
      const encoded = body.encoded_jit_config;
      add('JIT config', encoded);
      if (typeof encoded === 'string') {
        const files = decodeJitConfig(encoded);
        add('JIT config credentials file', files['.credentials']);
        const rsa = files['.credentials_rsaparams'];
        if (rsa !== undefined) {
          const params = JSON.parse(rsa) as Record<string, unknown>;
          // The private exponent and primes; the modulus is public.
          for (const k of ['d', 'p', 'q', 'dp', 'dq', 'inverseQ']) add(`JIT runner key (${k})`, params[k]);
        }
      }
    } else if (template.endsWith('/registration-token')) add('registration token', body.token);
    else if (template.endsWith('/remove-token')) add('remove token', body.token);
    else if (template.endsWith('/access_tokens')) add('installation token', body.token);
  }
  return [...out.values()];
}

/**
 * Pieces that betray a secret even when a log line cut or re-encoded it: the whole value, a few 24-character
 * windows of a long one, and each line of a PEM body (a PEM in a JSON log line has `\n` escapes between them).
 */
export function needles(secret: Secret): string[] {
  const v = secret.value;
  const out = new Set<string>([v]);
  if (v.includes('-----BEGIN')) {
    for (const line of v.split(/\r?\n/)) if (line.length >= 32 && !line.startsWith('-----')) out.add(line);
  } else if (v.length >= 48) {
    const w = 24;
    for (const at of [Math.floor(v.length / 3), Math.floor(v.length / 2), v.length - w]) {
      out.add(v.slice(at, at + w));
    }
  }
  return [...out];
}

export interface SecretHit {
  readonly kind: string;
  readonly source: string;
  readonly line: number;
}

/** Where any needle of any secret occurs. Hits name the kind of secret and the line, never the secret. */
export function findSecrets(
  sources: Readonly<Record<string, string>>,
  secrets: readonly Secret[],
): SecretHit[] {
  const hits: SecretHit[] = [];
  const prepared = secrets.map((s) => ({ kind: s.kind, needles: needles(s) }));
  for (const [source, text] of Object.entries(sources)) {
    const lines = text.split('\n');
    lines.forEach((line, index) => {
      for (const s of prepared) {
        if (s.needles.some((n) => line.includes(n))) hits.push({ kind: s.kind, source, line: index + 1 });
      }
    });
  }
  return hits;
}

/** Counts of secrets by kind, for the report and to show the check had something to look for. */
export function countByKind(secrets: readonly Secret[]): Record<string, number> {
  const out: Record<string, number> = {};
  for (const s of secrets) out[s.kind] = (out[s.kind] ?? 0) + 1;
  return out;
}
