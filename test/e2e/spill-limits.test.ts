import t from 'tap';
import { join } from 'node:path';
import { runAuditfwd } from '../helpers/proc.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';
import { FlakyDrain, firstSeen, range, received } from '../helpers/spill.js';

// ~3.2 MB of real audit events into a 1 MiB spill.
const N = 2500;
const LINES = numberedAuditLines(N);
const INPUT = LINES.join('\n') + '\n';
/** Byte offset in INPUT where line k starts. */
const START = [0];
for (const l of LINES) START.push(START[START.length - 1] + Buffer.byteLength(l) + 1);

// exitTimeout: how long the end of input waits for the drain; short where the drain stays away on purpose,
// generous where it is up, so that a loaded machine does not turn a slow delivery into exit 75.
function args(stateDir: string, drain: FlakyDrain, whenFull: string, exitTimeout = '300ms'): string[] {
  return [
    '--to', drain.address, '--state-dir', stateDir, '--buffer-max-bytes', '1MiB', '--memory-max-bytes', '64KiB',
    '--when-full', whenFull, '--spill-fsync-interval', '50ms', '--reconnect-max-delay', '200ms', '--exit-timeout', exitTimeout,
  ];
}

for (const policy of ['drop-newest', 'drop-oldest'] as const) {
  t.test(`--when-full ${policy}: what is dropped is exactly what the gap records name`, async (t) => {
    const dir = t.testdir();
    const drain = await FlakyDrain.reserve(t);
    const a = args(join(dir, 'state'), drain, policy);
    // The drain is away for the whole input: it ends up in the spill, less what did not fit.
    const first = runAuditfwd(t, a, { stdin: INPUT });
    t.equal(await first.exited, 75, 'exit 75: input ended, the drain stayed away');
    t.match(first.stderr(), /spill full/);
    await drain.up();
    const second = runAuditfwd(t, args(join(dir, 'state'), drain, policy, '60s'));
    t.equal(await second.exited, 0, 'the second run delivers the spill');

    const { lines, gaps } = received(drain.messages);
    const { seqs, repeats, outOfOrder } = firstSeen(lines);
    t.equal(repeats + outOfOrder, 0, 'what is kept arrives once, in order');
    t.ok(seqs.length > 0 && seqs.length < N, `${N - seqs.length} of ${N} lines dropped`);
    t.ok(gaps.length > 0, `${gaps.length} gap records`);
    const missing = range(0, N).filter((k) => !seqs.includes(k));
    const named = new Set<number>();
    let lineCount = 0;
    for (const g of gaps) {
      t.equal(g.appName, 'auditfwd');
      const p = Object.fromEntries(g.sd.find((e) => e.id === 'gap@32473')!.params);
      t.equal(p.source, 'stdin');
      t.equal(Number(p.bytes), Number(p.to) - Number(p.from), 'bytes = to - from');
      t.match(g.msg.toString(), new RegExp(`^auditfwd dropped ${p.lines} lines \\(${p.bytes} bytes\\) of stdin at offsets ${p.from}-${p.to}`));
      lineCount += Number(p.lines);
      const from = START.indexOf(Number(p.from));
      const to = START.indexOf(Number(p.to));
      t.ok(from >= 0 && to > from, 'offsets fall on line boundaries');
      for (let k = from; k < to; k++) named.add(k);
    }
    t.equal(lineCount, missing.length, 'the gap records count every dropped line');
    t.same([...named].sort((x, y) => x - y), missing, 'and name exactly the dropped ones');
    if (policy === 'drop-newest') t.equal(seqs[0], 0, 'the oldest lines are kept');
    else t.equal(seqs[seqs.length - 1], N - 1, 'the newest lines are kept');
    // A gap record stands where its hole is.
    const order = drain.messages.map((m) => received([m])).map((r) => (r.gaps.length ? -1 : seqOf(r.lines[0])));
    const firstGap = order.indexOf(-1);
    const p0 = Object.fromEntries(received([drain.messages[firstGap]]).gaps[0].sd[0].params);
    const [from, to] = [START.indexOf(Number(p0.from)), START.indexOf(Number(p0.to))];
    t.ok(order.slice(0, firstGap).every((s) => s < from), 'lines before the first gap record come before its hole');
    t.ok(order.slice(firstGap + 1).every((s) => s === -1 || s >= to), 'lines after it come after the hole');
  });
}

t.test('--when-full block: reading waits, nothing is lost', async (t) => {
  const dir = t.testdir();
  const drain = await FlakyDrain.reserve(t);
  const run = runAuditfwd(t, args(join(dir, 'state'), drain, 'block', '60s'), { stdin: INPUT });
  await run.waitForLog(/spill full: reading waits/);
  await drain.up();
  t.equal(await run.exited, 0, run.stderr());
  const { lines, gaps } = received(drain.messages);
  t.same(lines, LINES, 'every line, in order, once');
  t.equal(gaps.length, 0, 'no gap');
});

t.test('a spill folder its group or others may write in: exit 2, one line', async (t) => {
  const { chmodSync, mkdirSync } = await import('node:fs');
  const { usageError } = await import('../helpers/proc.js');
  const dir = join(t.testdir(), 'spill');
  mkdirSync(dir);
  chmodSync(dir, 0o777);
  await usageError(t, ['--to', '127.0.0.1:1', '--buffer-dir', dir], /--buffer-dir: .* is writable by every user \(mode 0777\); chmod 700 it/, { stdin: '' });
});
