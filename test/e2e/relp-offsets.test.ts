import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAuditfwd } from '../helpers/proc.js';
import { TestRelpServer } from '../helpers/relp-server.js';
import { numberedAuditLines, seqOf } from '../helpers/shared-data.js';

function committedOffset(stateDir: string): number {
  try {
    const data = JSON.parse(readFileSync(join(stateDir, 'checkpoints.json'), 'utf8')) as { files: Array<{ offset: number }> };
    return data.files[0]?.offset ?? 0;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw err;
  }
}

t.test('the file offset advances only over acknowledged lines; the next run sends the rest', async (t) => {
  const lines = numberedAuditLines(300);
  const dir = t.testdir({ app: {}, state: {} });
  const file = join(dir, 'app', 'audit.log');
  const state = join(dir, 'state');
  writeFileSync(file, lines.join('\n') + '\n');
  const endOf = (k: number) => lines.slice(0, k + 1).reduce((a, l) => a + Buffer.byteLength(l) + 1, 0);
  const args = ['--file', file, '--state-dir', state, '--checkpoint-interval', '10ms', '--shutdown-timeout', '0'];

  // Run 1: the drain takes every message but acknowledges only the first 250. The file is read in
  // 256 KiB chunks (≈196 of these lines), one batch each: the first batch is acknowledged, the second not.
  const held = await TestRelpServer.start();
  t.teardown(() => held.close());
  let n = 0;
  held.answer = () => (++n <= 250 ? 'ack' : 'hold');
  const run1 = runAuditfwd(t, [...args, '--to', `relp://127.0.0.1:${held.port}`]);
  await held.until(() => held.messages.length === lines.length);
  // The acknowledgements are on their way to auditfwd; its checkpoint file (saved every 10 ms) is the
  // only outside sign that it took them, so it is polled.
  await until(() => committedOffset(state) > 0, () => `nothing committed\n${run1.stderr()}`);
  run1.child.kill('SIGTERM');
  await run1.exited;
  const offset = committedOffset(state);
  t.ok(offset <= endOf(249), `committed offset ${offset} is within the acknowledged lines (≤ ${endOf(249)})`);

  // Run 2: an acknowledging drain gets everything from the committed offset on, in order.
  const ok = await TestRelpServer.start();
  t.teardown(() => ok.close());
  const run2 = runAuditfwd(t, [...args, '--once', '--to', `relp://127.0.0.1:${ok.port}`]);
  t.equal(await run2.exited, 0, 'run 2 delivers the rest and exits 0');
  const got = ok.messages.map((m) => m.toString('utf8')).map((m) => m.slice(m.indexOf('{"seq":')));
  const first = seqOf(got[0]);
  t.equal(endOf(first - 1), offset, 'the second run starts exactly at the committed offset');
  t.same(got, lines.slice(first), 'from there, every line once and in order');
  t.equal(committedOffset(state), endOf(lines.length - 1), 'after run 2 the whole file is committed');
});

async function until(cond: () => boolean, why: () => string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(why());
    await new Promise((r) => setTimeout(r, 10));
  }
}
