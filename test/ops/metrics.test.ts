import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { health } from '../../src/ops/health.js';
import { Stats } from '../../src/telemetry/stats.js';
import { TestDrain } from '../helpers/drain.js';
import { freePort, get, opsPort, parseMetrics, until } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';

t.test('metric values after a known workload', async (t) => {
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const lines = Array.from({ length: 500 }, (_, i) => `{"n":${i}}`);
  lines[100] = 'x'.repeat(3000); // longer than --max-message-bytes: sent truncated
  const dir = t.testdir({ 'audit.log': lines.join('\n') + '\n', state: {} });
  const file = join(dir, 'audit.log');
  const started = Date.now() / 1000;
  const run = runAuditfwd(t, ['--file', file, '--state-dir', join(dir, 'state'), '--to', drain.address, '--max-message-bytes', '1KiB', '--metrics-listen', '127.0.0.1:0', '--reconnect-max-delay', '200ms']);
  await run.waitForLog(/serving \/metrics/);
  const base = `http://127.0.0.1:${opsPort(run.stderr())}`;
  await drain.waitFor(500);
  const scrape = async () => parseMetrics((await get(`${base}/metrics`)).text);
  // The drain reading the bytes and auditfwd's write callback race: wait for the counter.
  const m = await until('all messages counted', async () => {
    const m = await scrape();
    return m.get('auditfwd_messages_sent_total') === 500 && m.get(`auditfwd_lag_bytes{file="${file}"}`) === 0 ? m : undefined;
  });
  const wireBytes = drain.messages.reduce((n, msg) => n + String(msg.length).length + 1 + msg.length, 0);
  t.equal(m.get(`auditfwd_lines_read_total{file="${file}"}`), 500);
  t.equal(m.get('auditfwd_bytes_sent_total'), wireBytes, 'bytes sent = the octet-counted frames the drain received');
  t.equal(m.get('auditfwd_lines_truncated_total'), 1);
  t.equal(m.get('auditfwd_drain_connected'), 1);
  t.equal(m.get('auditfwd_reconnects_total'), 0);
  t.equal(m.get('auditfwd_spill_bytes'), 0);
  t.equal(m.get('auditfwd_buffer_bytes'), 0);
  t.ok(m.get('auditfwd_last_send_timestamp_seconds')! >= Math.floor(started) && m.get('auditfwd_last_send_timestamp_seconds')! <= Date.now() / 1000, 'last send is now-ish');
  t.ok(m.has('process_resident_memory_bytes'), 'process metrics too');
  t.match((await get(`${base}/healthz`)).text, /^ok/);

  // Lag: bytes appended while the drain is gone are lag until delivered.
  // Closed, not only dropped: a drain still listening may be reconnected to between two scrapes.
  await drain.close();
  await until('disconnect noticed', async () => ((await scrape()).get('auditfwd_drain_connected') === 0 ? true : undefined));
  const extra = 'y'.repeat(99) + '\n';
  writeFileSync(file, extra, { flag: 'a' });
  const lagging = await until('lag counted', async () => {
    const m = await scrape();
    return m.get(`auditfwd_lines_read_total{file="${file}"}`) === 501 ? m : undefined;
  });
  t.equal(lagging.get(`auditfwd_lag_bytes{file="${file}"}`), extra.length, 'the appended line is lag');
  t.equal(lagging.get('auditfwd_messages_sent_total'), 500);
});

t.test('/healthz: drain down → 503 → drain up → 200; /readyz', async (t) => {
  const port = await freePort();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${port}`, '--metrics-listen', '127.0.0.1:0', '--unhealthy-after', '300ms', '--reconnect-max-delay', '200ms'], { stdin: 'pipe' });
  await run.waitForLog(/serving \/metrics/);
  const base = `http://127.0.0.1:${opsPort(run.stderr())}`;
  t.equal((await get(`${base}/readyz`)).status, 200);
  const down = await until('503', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 503 ? r : undefined;
  });
  t.match(down.text, /^unhealthy: drain unreachable for \d+s/);
  // Down for over 300 ms with retries every 100-200 ms: several attempts, one log line (a minute's summary).
  t.equal(run.stderr().match(/cannot connect to drain/g)?.length, 1, 'connection failures are rate limited');
  const drain = await TestDrain.start({ port });
  t.teardown(() => drain.close());
  const up = await until('200', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 200 ? r : undefined;
  });
  t.match(up.text, /^ok: running/);
  run.child.stdin!.write('one line\n');
  await drain.waitFor(1);
  t.equal((await get(`${base}/nope`)).status, 404);
  run.child.stdin!.end();
  t.equal(await run.exited, 0);
});

t.test('health verdicts (buffer full, thresholds, stdout)', async (t) => {
  const stats = new Stats();
  const now = Date.now();
  const p = { stats, phase: 'running' as const, bufferState: { bytes: 0 }, destination: { transport: 'tcp' as const, host: 'd', port: 1 } };
  stats.drainConnected = true;
  t.same(health(p, 1000, now), { ok: true, reason: 'running' });
  const full = { ...p, bufferState: { bytes: 10, fullSinceMs: now - 1500 } };
  t.same(health(full, 1000, now), { ok: false, reason: 'buffer full for 2s' });
  t.equal(health(full, 2000, now).ok, true, 'not for longer than the threshold yet');
  stats.drainConnected = false;
  t.equal(health(p, 1000, now).ok, true, 'just went down');
  t.match(health(p, 1000, now + 5000), { ok: false, reason: /drain unreachable for 5s/ });
  t.equal(health({ ...p, destination: { transport: 'stdout' } }, 1000, now + 5000).ok, true, 'stdout has no drain to be down');
  stats.drainConnected = true;
  const unwritable = { ...p, bufferState: { bytes: 0, spillProblem: { code: 'ENOSPC', sinceMs: now - 3000 } } };
  t.same(health(unwritable, 1000, now), { ok: false, reason: 'spill cannot be written (ENOSPC) for 3s' });
  t.equal(health(unwritable, 5000, now).ok, true, 'a spill that cannot be written is unhealthy only past the threshold');
});
