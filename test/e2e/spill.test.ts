import t from 'tap';
import { appendFileSync, readdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAuditfwd, type Run } from '../helpers/proc.js';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { FlakyDrain, firstSeen, range, received } from '../helpers/spill.js';

const LINES = numberedAuditLines(3000);
const text = (from: number, to: number) => LINES.slice(from, to).join('\n') + '\n';

function common(stateDir: string, drain: FlakyDrain): string[] {
  return ['--to', drain.address, '--state-dir', stateDir, '--spill-fsync-interval', '50ms', '--reconnect-max-delay', '200ms', '--shutdown-timeout', '0'];
}

/** Waits until every sequence number below `n` has arrived (repeats do not count). */
async function waitForAll(drain: FlakyDrain, n: number): Promise<void> {
  for (;;) {
    const have = new Set(firstSeen(received(drain.messages).lines).seqs.filter((s) => s < n)).size;
    if (have >= n) return;
    await drain.waitFor(drain.messages.length + (n - have));
  }
}

async function stop(t: Tap.Test, run: Run): Promise<void> {
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'SIGTERM: clean exit');
}

t.test('drain down at start, then up: every line, in order, once', async (t) => {
  const dir = t.testdir({ logs: { 'audit.log': text(0, 2000) } });
  const drain = await FlakyDrain.reserve(t);
  const run = runAuditfwd(t, [...common(join(dir, 'state'), drain), '--file', join(dir, 'logs', 'audit.log')]);
  await run.waitForLog(/spilling to disk/);
  t.equal(statSync(join(dir, 'state', 'spill')).mode & 0o777, 0o700, 'spill folder 0700');
  for (const n of readdirSync(join(dir, 'state', 'spill')).filter((f) => f.endsWith('.seg'))) {
    t.equal(statSync(join(dir, 'state', 'spill', n)).mode & 0o777, 0o600, `${n} 0600`);
  }
  await drain.up();
  await drain.waitFor(2000);
  const got = received(drain.messages);
  t.same(got.lines.map((l) => l), LINES.slice(0, 2000), 'all lines, in order, no repeats');
  await run.waitForLog(/spill caught up/);
  await stop(t, run);
});

t.test('drain dies and comes back, again and again: nothing lost, order kept', async (t) => {
  const dir = t.testdir({ logs: { 'audit.log': '' } });
  const file = join(dir, 'logs', 'audit.log');
  const drain = await FlakyDrain.reserve(t);
  await drain.up();
  const run = runAuditfwd(t, [...common(join(dir, 'state'), drain), '--file', file]);
  await run.waitForLog(/following file/);
  for (let round = 0; round < 4; round++) {
    const before = drain.messages.length;
    appendFileSync(file, text(round * 500, round * 500 + 500));
    // Dies mid-stream, after the first lines of this round; the rest waits for the next drain.
    await drain.waitFor(before + 1);
    await drain.down();
    appendFileSync(file, '');
    await drain.up();
  }
  await waitForAll(drain, 2000);
  const { seqs, repeats, outOfOrder } = firstSeen(received(drain.messages).lines);
  t.same(seqs, range(0, 2000), 'every line');
  t.equal(outOfOrder, 0, 'in order');
  t.comment(`${repeats} lines sent twice (written to a connection the drain then dropped)`);
  await stop(t, run);
});

t.test('outage, rotation, rotated file deleted, restart, drain back: every line in order', async (t) => {
  const dir = t.testdir({ logs: { 'audit.log': text(0, 1000) } });
  const file = join(dir, 'logs', 'audit.log');
  const drain = await FlakyDrain.reserve(t);
  const args = [...common(join(dir, 'state'), drain), '--file', file];
  const first = runAuditfwd(t, args);
  await first.waitForLog(/spilling to disk/);
  renameSync(file, `${file}.1`);
  writeFileSync(file, text(1000, 2000));
  // The old file was read to its end when the tailer says it reads the new one.
  await first.waitForLog(/file rotated; reading the new one/);
  unlinkSync(`${file}.1`);
  await stop(t, first);
  appendFileSync(file, text(2000, 2500));
  const second = runAuditfwd(t, args);
  await second.waitForLog(/spill from an earlier run found/);
  await drain.up();
  await waitForAll(drain, 2500);
  const { seqs, outOfOrder, repeats } = firstSeen(received(drain.messages).lines);
  t.same(seqs, range(0, 2500), 'every line, the deleted file\'s too');
  t.equal(outOfOrder, 0, 'in order');
  t.equal(repeats, 0, 'a clean stop sends nothing twice');
  await stop(t, second);
});

t.test('kill -9 while spilling, restart: nothing lost', async (t) => {
  const dir = t.testdir({ logs: { 'audit.log': text(0, 1500) } });
  const file = join(dir, 'logs', 'audit.log');
  const drain = await FlakyDrain.reserve(t);
  const args = [...common(join(dir, 'state'), drain), '--file', file];
  const first = runAuditfwd(t, args);
  await first.waitForLog(/spilling to disk/);
  appendFileSync(file, text(1500, 2500));
  first.child.kill('SIGKILL');
  await first.exited;
  const second = runAuditfwd(t, args);
  await second.waitForLog(/following file/);
  await drain.up();
  await waitForAll(drain, 2500);
  const { seqs, outOfOrder, repeats } = firstSeen(received(drain.messages).lines);
  t.same(seqs, range(0, 2500), 'every line');
  t.equal(outOfOrder, 0, 'first arrivals in order');
  t.comment(`${repeats} lines sent twice (read again from the last saved position)`);
  await stop(t, second);
});

t.test('stdin: EOF waits for the drain up to --exit-timeout, then a damaged spill is sent as far as it is intact', async (t) => {
  const dir = t.testdir();
  const drain = await FlakyDrain.reserve(t);
  const args = [...common(join(dir, 'state'), drain), '--exit-timeout', '300ms'];
  const first = runAuditfwd(t, args, { stdin: text(0, 1500) });
  t.equal(await first.exited, 75, 'exit 75: input ended, the drain stayed away');
  t.match(first.stderr(), /left in the spill; sent first at the next start/);
  const spill = join(dir, 'state', 'spill');
  const segs = readdirSync(spill).filter((n) => n.endsWith('.seg')).sort();
  t.ok(segs.length > 0, 'segments left');
  // Flip bytes in the middle of the biggest segment, and leave half a record at the end of the last.
  const biggest = segs.map((n) => join(spill, n)).sort((a, b) => statSync(b).size - statSync(a).size)[0];
  const data = readFileSync(biggest);
  for (let i = 0; i < 16; i++) data[(data.length >> 1) + i] ^= 0x5a;
  writeFileSync(biggest, data);
  appendFileSync(join(spill, segs[segs.length - 1]), Buffer.from('AFSP\0\0\x10\0partial'));

  await drain.up();
  // The drain is up now: a generous exit timeout, so a loaded machine's slow delivery does not read as exit 75.
  const second = runAuditfwd(t, [...common(join(dir, 'state'), drain), '--exit-timeout', '60s']);
  t.equal(await second.exited, 0, second.stderr());
  t.match(second.stderr(), /torn record at the end of a spill segment cut off/);
  t.match(second.stderr(), /damaged record in a spill segment skipped/);
  t.match(second.stderr(), /all input delivered/);
  const { seqs, outOfOrder, repeats } = firstSeen(received(drain.messages).lines);
  t.equal(outOfOrder + repeats, 0, 'in order, once');
  t.ok(seqs.length > 1000 && seqs.length < 1500, `the intact records are sent (${1500 - seqs.length} lines lost with the damaged one)`);
  t.equal(readdirSync(spill).filter((n) => n.endsWith('.corrupt')).length, 1, 'the damaged segment is kept aside');
  t.same(readdirSync(spill).filter((n) => n.endsWith('.seg')), [], 'nothing else is left');
});
