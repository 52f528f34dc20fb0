/**
 * The controller image, built and run without a container engine: deploy/Dockerfile's own instructions are carried
 * out in a clean directory (test/image/dockerfile.ts: COPY from the context minus .dockerignore, `npm ci` with dev
 * dependencies and no scripts, tsc, `npm ci --omit=dev` compiling better-sqlite3 against node's headers), then the
 * final stage's ENTRYPOINT and CMD run as a container would run them (test/support/container.ts): as uid 1000, root
 * filesystem read-only, only the store's volume writable, the config and secrets mounted read-only. It must reach
 * /readyz, run a job against the simulator, pass the HEALTHCHECK command and stop cleanly on SIGTERM.
 *
 * Slow by nature (two `npm ci` runs, one compiling a native module): about 3 minutes on 2 cores.
 */
import { spawnSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import type { Simulator } from '../../src/sim/github/index.js';
import type { RunningContainer } from '../support/container.js';
import { requireContainerRuntime, startContainer } from '../support/container.js';
import { freePort } from '../support/free-port.js';
import { startFleetSimulator } from '../support/sim-fleet.js';
import { untilEvery } from '../support/until.js';
import type { BuildResult } from './dockerfile.js';
import { buildDockerfile, parseDockerfile } from './dockerfile.js';

const REPO = path.resolve(import.meta.dirname, '../..');
const DOCKERFILE = path.join(REPO, 'deploy/Dockerfile');
const until = untilEvery(250);
/** The prefix of this machine's node installation (/usr for Debian's node), standing in for the image's /usr/local. */
const NODE_PREFIX = path.dirname(path.dirname(process.execPath));

describe.skipIf(!requireContainerRuntime('controller image'))(
  'the controller image (deploy/Dockerfile)',
  () => {
    const work = mkdtempSync(path.join(tmpdir(), 'rf-image-'));
    let image: BuildResult;
    let sim: Simulator;

    beforeAll(async () => {
      image = await buildDockerfile({
        dockerfile: DOCKERFILE,
        context: REPO,
        workDir: path.join(work, 'stages'),
        pathMap: { '/usr/local': NODE_PREFIX },
        runEnv: {
          PATH: process.env.PATH ?? '/usr/bin:/bin',
          HOME: path.join(work, 'home'),
          // npm's download cache (not node_modules): the packages still come from the registry's tarballs.
          npm_config_cache: process.env.npm_config_cache ?? path.join(homedir(), '.npm'),
          npm_config_update_notifier: 'false',
        },
        signal: AbortSignal.timeout(840_000),
      });
      sim = await startFleetSimulator();
    }, 900_000);

    afterAll(async () => {
      await sim?.close();
      rmSync(work, { recursive: true, force: true });
    });

    it('is based on node 20 bookworm-slim pinned to the exact version the tests run with', () => {
      const from = parseDockerfile(readFileSync(DOCKERFILE, 'utf8')).filter((i) => i.keyword === 'FROM');
      expect(from.length).toBe(3);
      expect(image.args.NODE_IMAGE).toBe(`node:${process.versions.node}-bookworm-slim`);
      expect(image.args.NODE_IMAGE).toMatch(/^node:20\.\d+\.\d+-bookworm-slim$/);
      for (const stage of image.stages) expect(stage.image).toBe(image.args.NODE_IMAGE);
    });

    it('holds dist/ and production dependencies only, runs as uid 1000, starts `runner-fleet start`', () => {
      const app = path.join(image.final.root, 'app');
      expect(existsSync(path.join(app, 'dist/cli/main.js'))).toBe(true);
      expect(existsSync(path.join(app, 'package.json'))).toBe(true);
      expect(existsSync(path.join(app, 'src'))).toBe(false);
      // The lock file marks what only development needs (`dev: true`, transitively): none of it is in the image.
      const lock = JSON.parse(readFileSync(path.join(REPO, 'package-lock.json'), 'utf8')) as {
        packages: Record<string, { dev?: boolean; optional?: boolean }>;
      };
      const entries = Object.entries(lock.packages).filter(([where]) => where.startsWith('node_modules/'));
      const devOnly = entries.filter(([, e]) => e.dev === true).map(([where]) => where);
      const production = entries
        .filter(([, e]) => e.dev !== true && e.optional !== true)
        .map(([where]) => where);
      expect(devOnly).toContain('node_modules/typescript');
      for (const where of devOnly) expect(existsSync(path.join(app, where)), where).toBe(false);
      for (const where of production) expect(existsSync(path.join(app, where)), where).toBe(true);
      expect(
        existsSync(path.join(app, 'node_modules/better-sqlite3/build/Release/better_sqlite3.node')),
      ).toBe(true);
      // No test file reached the image.
      const tests = spawnSync('find', [path.join(app, 'dist'), '-name', '*.test.*'], { encoding: 'utf8' });
      expect(tests.stdout.trim()).toBe('');
      expect(image.final.user).toBe('1000:1000');
      expect(image.final.entrypoint).toEqual(['node', '/app/dist/cli/main.js']);
      expect(image.final.cmd).toEqual(['start', '--config', '/etc/runner-fleet/config/fleet.yaml']);
      expect(image.final.exposed).toEqual([8080]);
      expect(image.stages.find((s) => s.name === 'deps')?.systemPackages).toEqual(['python3', 'make', 'g++']);
    });

    it('runs read-only as uid 1000 with the store on a volume: ready, a job, HEALTHCHECK, clean stop', async () => {
      const port = await freePort();
      const volumes = path.join(work, 'volumes');
      const config = path.join(volumes, 'config');
      const secrets = path.join(volumes, 'secrets');
      const state = path.join(volumes, 'state');
      for (const dir of [config, secrets, state]) mkdirSync(dir, { recursive: true });
      chmodSync(config, 0o755);
      chmodSync(secrets, 0o755);
      // A kubelet gives a secret volume's files to the pod's fsGroup (0440); an emptyDir is writable by it.
      writeFileSync(path.join(secrets, 'github-app-private-key'), sim.privateKeyPem, { mode: 0o440 });
      chownSync(path.join(secrets, 'github-app-private-key'), 0, 1000);
      chownSync(state, 1000, 1000);
      chmodSync(state, 0o750);
      writeFileSync(
        path.join(config, 'fleet.yaml'),
        stringify({
          name: 'image',
          github: {
            url: sim.baseUrl,
            apiUrl: sim.apiUrl,
            auth: {
              app: { id: sim.appId, privateKey: '${file:/etc/runner-fleet/secrets/github-app-private-key}' },
            },
          },
          webhook: { secret: '${env:RUNNER_FLEET_WEBHOOK_SECRET}' },
          server: { host: '127.0.0.1', port },
          store: { path: '/var/lib/runner-fleet/state.db' },
          controller: { resyncInterval: '2s' },
          scaleSets: [
            {
              name: 'img',
              scope: { org: 'octo-org' },
              labels: ['linux', 'image'],
              max: 2,
              provider: { kind: 'sim' },
            },
          ],
        }),
        { mode: 0o644 },
      );
      sim.setWebhook(`http://127.0.0.1:${port}/webhook`);

      let container: RunningContainer | undefined;
      try {
        container = await startContainer({
          command: [...image.final.entrypoint!, ...image.final.cmd!],
          env: {
            PATH: '/usr/local/bin:/usr/bin:/bin',
            ...image.final.env,
            RUNNER_FLEET_WEBHOOK_SECRET: sim.webhookSecret,
          },
          workingDir: image.final.workdir,
          user: { uid: 1000, gid: 1000 },
          mounts: [
            { hostPath: path.join(image.final.root, 'app'), containerPath: '/app', readOnly: true },
            { hostPath: config, containerPath: '/etc/runner-fleet/config', readOnly: true },
            { hostPath: secrets, containerPath: '/etc/runner-fleet/secrets', readOnly: true },
            { hostPath: state, containerPath: '/var/lib/runner-fleet', readOnly: false },
          ],
          readOnlyRootFilesystem: true,
        });
        const running = container;
        await until(
          async () => {
            if (running.process.exitCode !== null)
              throw new Error(`the container exited:\n${running.output()}`);
            const res = await fetch(`http://127.0.0.1:${port}/readyz`).catch(() => undefined);
            await res?.body?.cancel();
            return res?.status === 200;
          },
          90_000,
          'the controller in the image to be ready',
          () => running.output().slice(-2000),
        );

        const [job] = sim.createJobs({
          owner: 'octo-org',
          repo: 'app',
          labels: ['self-hosted', 'linux', 'image'],
        });
        await until(
          () => sim.job(job!.id)?.status === 'completed',
          90_000,
          'the job to complete',
          () => sim.job(job!.id),
        );
        expect(sim.job(job!.id)?.conclusion).toBe('success');

        // Docker's HEALTHCHECK command, as written in the Dockerfile, against this controller.
        const [bin, ...args] = image.final.healthcheck!;
        const check = spawnSync(bin === 'node' ? process.execPath : bin!, args, {
          env: { RUNNER_FLEET_HEALTHCHECK_URL: `http://127.0.0.1:${port}/healthz` },
          timeout: 30_000,
        });
        expect(check.status).toBe(0);
        const down = spawnSync(process.execPath, args, {
          env: { RUNNER_FLEET_HEALTHCHECK_URL: 'http://127.0.0.1:1/healthz' },
          timeout: 30_000,
        });
        expect(down.status).toBe(1);

        // The store is the only thing written, on its volume, owned by uid 1000 and private.
        const db = statSync(path.join(state, 'state.db'));
        expect(db.uid).toBe(1000);
        expect(db.mode & 0o777).toBe(0o600);
        expect(container.output()).not.toMatch(/EROFS|EACCES|read-only file system/i);

        const exit = await container.stop();
        expect(exit).toEqual({ code: 0, signal: null });
        container = undefined;
      } finally {
        sim.setWebhook(null);
        await container?.stop(5_000);
      }
    }, 240_000);
  },
);
