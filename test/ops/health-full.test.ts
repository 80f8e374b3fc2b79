import t from 'tap';
import { join } from 'node:path';
import { get, opsPort, parseMetrics, until } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { FlakyDrain } from '../helpers/spill.js';

// ~2.5 MB of real audit events: more than a 1 MiB spill holds.
const LINES = numberedAuditLines(2000);

t.test('/healthz: spill full (--when-full block) → 503 naming the buffer → drain back → 200', async (t) => {
  const dir = t.testdir();
  const drain = await FlakyDrain.reserve(t);
  const run = runAuditfwd(
    t,
    [
      '--to', drain.address, '--state-dir', join(dir, 'state'), '--buffer-max-bytes', '1MiB', '--memory-max-bytes', '64KiB',
      '--when-full', 'block', '--spill-fsync-interval', '50ms', '--reconnect-max-delay', '200ms',
      '--metrics-listen', '127.0.0.1:0', '--unhealthy-after', '300ms',
    ],
    { stdin: 'pipe' },
  );
  await run.waitForLog(/serving \/metrics/);
  const base = `http://127.0.0.1:${opsPort(run.stderr())}`;
  const metric = async (name: string) => parseMetrics((await get(`${base}/metrics`)).text).get(name);
  t.equal(await metric('auditfwd_buffer_full'), 0, 'not full at start');
  // Kept open: the run must outlive the drain's return, to be seen healthy again.
  run.child.stdin!.write(LINES.join('\n') + '\n');
  await run.waitForLog(/spill full: reading waits/);
  t.equal(await metric('auditfwd_buffer_full'), 1, 'full as soon as reading waits');
  const down = await until('503 for the full buffer', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 503 && /buffer full/.test(r.text) ? r : undefined;
  });
  t.match(down.text, /^unhealthy: .*buffer full for \d+s/);

  await drain.up();
  await drain.waitFor(LINES.length);
  const up = await until('200', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 200 ? r : undefined;
  });
  t.match(up.text, /^ok: running/);
  t.equal(await metric('auditfwd_buffer_full'), 0, 'not full once the drain took it all');
  run.child.stdin!.end();
  t.equal(await run.exited, 0, run.stderr());
});

t.test('/healthz: memory buffer full (no spill) → 503 → drain back → 200', async (t) => {
  const drain = await FlakyDrain.reserve(t);
  const run = runAuditfwd(
    t,
    ['--to', drain.address, '--memory-max-bytes', '64KiB', '--reconnect-max-delay', '200ms', '--metrics-listen', '127.0.0.1:0', '--unhealthy-after', '300ms'],
    { stdin: 'pipe' },
  );
  await run.waitForLog(/serving \/metrics/);
  const base = `http://127.0.0.1:${opsPort(run.stderr())}`;
  run.child.stdin!.write(LINES.slice(0, 200).join('\n') + '\n');
  const down = await until('503 for the full buffer', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 503 && /buffer full/.test(r.text) ? r : undefined;
  });
  t.match(down.text, /^unhealthy: .*buffer full for \d+s/);
  t.equal(parseMetrics((await get(`${base}/metrics`)).text).get('auditfwd_buffer_full'), 1);
  await drain.up();
  await drain.waitFor(200);
  const up = await until('200', async () => {
    const r = await get(`${base}/healthz`);
    return r.status === 200 ? r : undefined;
  });
  t.match(up.text, /^ok: running/);
  run.child.stdin!.end();
  t.equal(await run.exited, 0, run.stderr());
});
