import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { untilTrue } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { TestRelpServer } from '../helpers/relp-server.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';

function committedOffset(stateDir: string): number {
  try {
    const data = JSON.parse(readFileSync(join(stateDir, 'checkpoints.json'), 'utf8')) as { files: Array<{ offset: number }> };
    return data.files[0]?.offset ?? 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

t.test('what the drain did not acknowledge survives a restart (as file offset or in the spill); the next run sends it', async (t) => {
  const lines = numberedAuditLines(2000);
  const dir = t.testdir({ app: {}, state: {} });
  const file = join(dir, 'app', 'audit.log');
  const state = join(dir, 'state');
  writeFileSync(file, lines.join('\n') + '\n');
  const endOf = (k: number) => lines.slice(0, k + 1).reduce((a, l) => a + Buffer.byteLength(l) + 1, 0);
  const args = ['--file', file, '--state-dir', state, '--checkpoint-interval', '10ms', '--shutdown-timeout', '0'];

  // Run 1: the drain takes every message but acknowledges only the first 1500. The file (≈2.6 MB) is
  // read in chunks of at most 512 KiB, a batch each: the first batches are acknowledged, the last not.
  const held = await TestRelpServer.start();
  t.teardown(() => held.close());
  let n = 0;
  held.answer = () => (++n <= 1500 ? 'ack' : 'hold');
  const run1 = runAuditfwd(t, [...args, '--to', `relp://127.0.0.1:${held.port}`]);
  await held.until(() => held.messages.length === lines.length);
  // Its checkpoint file (saved every 10 ms) is the only outside sign of progress, so it is polled.
  // With the disk spill a position is committed once the lines are durable there; the spill then
  // keeps them until the drain acknowledges them.
  await untilTrue(() => committedOffset(state) > 0, () => `nothing committed\n${run1.stderr()}`, 20_000);
  run1.child.kill('SIGTERM');
  await run1.exited;

  // Run 2: an acknowledging drain gets every line from at most the first unacknowledged one on, in order.
  const ok = await TestRelpServer.start();
  t.teardown(() => ok.close());
  const run2 = runAuditfwd(t, [...args, '--once', '--to', `relp://127.0.0.1:${ok.port}`]);
  t.equal(await run2.exited, 0, 'run 2 delivers the rest and exits 0');
  const got = ok.messages.map((m) => m.toString('utf8')).map((m) => m.slice(m.indexOf('{"seq":')));
  const first = seqOf(got[0]);
  t.ok(first >= 0 && first <= 1500, `run 2 starts at line ${first}, at or before the first unacknowledged line (1500)`);
  t.same(got, lines.slice(first), 'from there, every line once and in order');
  t.equal(committedOffset(state), endOf(lines.length - 1), 'after run 2 the whole file is committed');
});
