/**
 * The controller's HTTP server alone, in a process of its own, for the hostile-input suite and
 * `npm run reliability`: a crash here ends this process, not the test runner, and its memory can be measured from
 * outside. Run as `node --import tsx test/server/child-server.ts <level> <log file>`; prints one JSON line
 * `{"url":...,"pid":...}` on stdout once it listens, and exits on SIGTERM.
 */
import { createWriteStream } from 'node:fs';
import { createServer } from '../../src/server/server.js';
import { configSecrets, createLogger } from '../../src/telemetry/logger.js';
import type { LogLevel } from '../../src/telemetry/logger.js';
import { createMetrics } from '../../src/telemetry/metrics.js';
import { MemorySink, leakyReadModel, testConfig } from './helpers.js';

const [level = 'info', logFile = '/dev/null'] = process.argv.slice(2);
const config = testConfig();
const stream = createWriteStream(logFile, { flags: 'a', mode: 0o600 });
const sink = new MemorySink();
const server = await createServer({
  config,
  sink,
  readModel: leakyReadModel(),
  isReady: () => true,
  metrics: createMetrics(),
  logger: createLogger({
    level: level as LogLevel,
    destination: stream,
    knownSecrets: configSecrets(config),
  }),
});
const url = await server.listen();
process.stdout.write(`${JSON.stringify({ url, pid: process.pid })}\n`);
process.once('SIGTERM', () => {
  void server.close().finally(() => stream.end(() => process.exit(0)));
});
