import t from 'tap';
import { writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { once } from 'node:events';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import pino from 'pino';
import { resolveConfig } from '../../src/config/config.js';
import { Pipeline } from '../../src/pipeline.js';

// SIGTERM reaches the pipeline while it is still starting (opening the spill, reading the state
// file): there are no sources yet to stop. A soak run saw auditfwd never exit after such a SIGTERM.
t.test('a stop during start-up stops what start-up then creates; run() resolves', async (t) => {
  const dir = t.testdir({ state: {} });
  const file = join(dir, 'audit.log');
  writeFileSync(file, 'one\ntwo\n');
  // A drain that takes connections and never reads: the sink would wait for it forever unless cut off.
  const server = createServer(() => {}).listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => server.close());
  const port = (server.address() as { port: number }).port;
  for (const [when, shutdownTimeout] of [['before the first await', 60_000], ['with the deadline passed before the sink exists', 0]] as const) {
    const cfg = resolveConfig({ file: [file], to: `127.0.0.1:${port}`, stateDir: join(dir, 'state', String(shutdownTimeout)) });
    cfg.shutdownTimeoutMs = shutdownTimeout;
    const pipeline = new Pipeline(cfg, pino({ level: 'silent' }), { stdin: new PassThrough(), stdout: new PassThrough() });
    const running = pipeline.run();
    pipeline.stop();
    let timer: NodeJS.Timeout | undefined;
    const outcome = await Promise.race([running.then(() => 'stopped'), new Promise((resolve) => (timer = setTimeout(resolve, 10_000, 'still running after 10 s')))]);
    clearTimeout(timer);
    t.equal(outcome, 'stopped', when);
    if (outcome !== 'stopped') pipeline.stop();
  }
});
