import t from 'tap';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { get, opsPort, parseMetrics } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';

/**
 * auditfwd_buffer_bytes is what memory holds between reading and the drain; --memory-max-bytes bounds
 * it, also while a slow drain makes the file spill and the spill is read back.
 */
t.test('auditfwd_buffer_bytes stays within --memory-max-bytes 64KiB under a slow drain', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'audit.log');
  writeFileSync(file, numberedAuditLines(6000).join('\n') + '\n'); // ~11 MB
  // A drain that takes a little, then waits: memory, the socket and the spill all stay busy.
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', () => {
      s.pause();
      setTimeout(() => s.resume(), 50).unref();
    });
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const { port } = server.address() as { port: number };
  const limit = 64 * 1024;
  const run = runAuditfwd(t, ['--file', file, '--to', `127.0.0.1:${port}`, '--state-dir', join(dir, 'state'), '--memory-max-bytes', '64KiB', '--metrics-listen', '127.0.0.1:0']);
  await run.waitForLog(/serving \/metrics/);
  const url = `http://127.0.0.1:${opsPort(run.stderr())}/metrics`;
  const samples: number[] = [];
  // Until memory was seen holding data a number of times (the drain takes ~1 MB/s: the file lasts ~10 s).
  while (samples.filter((b) => b > 0).length < 20 && samples.length < 5000) {
    samples.push(parseMetrics((await get(url)).text).get('auditfwd_buffer_bytes')!);
  }
  t.ok(samples.filter((b) => b > 0).length >= 20, `memory was seen in use (${samples.length} samples)`);
  t.ok(Math.max(...samples) <= limit, `at most ${limit} bytes: max ${Math.max(...samples)}`);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
});
