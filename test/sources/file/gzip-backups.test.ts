import t from 'tap';
import { appendFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { TailHarness, tally } from '../../helpers/tail-harness.js';

/**
 * Catch-up from gzipped backups (lumberjack --audit-log-compress, logrotate's compress): the lines a
 * backup held that were not handed on are read from its decompressed stream, from the saved offset,
 * once the .gz is complete; a .gz of a file read to its end is never read.
 */

const line = (k: number) => `${String(k).padStart(6, '0')} ${'a'.repeat(40 + (k % 13))}`;
const text = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => line(from + i) + '\n').join('');
const nums = (h: TailHarness) => h.delivered.map((l) => Number(l.slice(0, 6)));
const tick = () => new Promise((r) => setTimeout(r, 15));

let rotations = 0;
/** kube-apiserver's rename to audit-<time>.log; `gzip`: its mill compresses the backup and deletes it. */
function rotate(path: string, gzip: boolean): string {
  const backup = join(path, '..', `audit-2026-11-30T10-00-${String(rotations++).padStart(2, '0')}.000.log`);
  renameSync(path, backup);
  if (gzip) {
    writeFileSync(`${backup}.gz`, gzipSync(readFileSync(backup)));
    unlinkSync(backup);
  }
  return `${backup}.gz`;
}

function harness(t: Tap.Test, opts: ConstructorParameters<typeof TailHarness>[2] = {}) {
  const dir = t.testdir({ state: {} });
  const h = new TailHarness(join(dir, 'audit.log'), join(dir, 'state'), opts);
  t.teardown(() => h.stop());
  return h;
}

t.test('stopped while a backup was rotated and gzipped, and another never seen: the rest from the .gz, oldest first', async (t) => {
  const h = harness(t);
  writeFileSync(h.path, text(0, 100));
  await h.start();
  await h.waitDelivered(100);
  await h.stop();
  appendFileSync(h.path, text(100, 150));
  rotate(h.path, true);
  await tick();
  writeFileSync(h.path, text(150, 220));
  rotate(h.path, true);
  await tick();
  writeFileSync(h.path, text(220, 250));
  await h.start();
  await h.waitDelivered(250);
  await h.stop();
  t.same(nums(h), Array.from({ length: 250 }, (_, i) => i), 'every line once, in order');
  t.ok(h.log.events.some((e) => e.msg === 'reading gzipped backup' && e.obj.offset === text(0, 100).length), 'the first .gz continues at the saved offset');
});

t.test('a .gz still being written is read only once its trailer checks out', async (t) => {
  const h = harness(t, { rotateWaitMs: 60_000 });
  writeFileSync(h.path, text(0, 100));
  await h.start();
  await h.waitDelivered(100);
  await h.stop();
  appendFileSync(h.path, text(100, 400));
  const backup = join(h.path, '..', 'audit-2026-11-30T11-00-00.000.log');
  renameSync(h.path, backup);
  const gz = gzipSync(readFileSync(backup));
  // The compressor has written half of it (and the mill deletes the original only when done, but
  // the original may also be gone already: a crash of the compressor, or maxbackup).
  writeFileSync(`${backup}.gz`, gz.subarray(0, gz.length >> 1));
  unlinkSync(backup);
  writeFileSync(h.path, text(400, 420));
  const mark = h.log.events.length;
  await h.start();
  await h.log.waitFor(mark, (e) => e.msg === 'gzipped backup not complete yet; waiting for it');
  t.equal(h.delivered.length, 100, 'nothing of the .gz (nor of the newer live file) before it is complete');
  writeFileSync(`${backup}.gz`, gz);
  await h.waitDelivered(420);
  await h.stop();
  t.same(tally(nums(h), 420), { lost: 0, repeated: 0, outOfOrder: 0 });
});

t.test('a .gz of a file read to its end is not read again, after a restart or while running', async (t) => {
  const h = harness(t);
  writeFileSync(h.path, text(0, 100));
  await h.start();
  await h.waitDelivered(100);
  const backup = rotate(h.path, false).slice(0, -3);
  writeFileSync(h.path, text(100, 120));
  await h.waitDelivered(120);
  await h.stop();
  // Compressed while stopped (the plain file read to its end, then deleted).
  writeFileSync(`${backup}.gz`, gzipSync(readFileSync(backup)));
  unlinkSync(backup);
  appendFileSync(h.path, text(120, 130));
  await h.start();
  await h.waitDelivered(130);
  // Rotated and compressed while running, after it was read; then a rotation makes the tailer look.
  rotate(h.path, true);
  writeFileSync(h.path, text(130, 140));
  await h.waitDelivered(140);
  rotate(h.path, false);
  writeFileSync(h.path, text(140, 150));
  await h.waitDelivered(150);
  await h.stop();
  t.same(nums(h), Array.from({ length: 150 }, (_, i) => i), 'exactly once');
});

t.test('running, behind: a file rotated and gzipped before the tailer ever opened it is read from the .gz', async (t) => {
  const h = harness(t);
  writeFileSync(h.path, text(0, 100));
  await h.start();
  await h.waitDelivered(100);
  // In one go, between two looks: the live file rotated (its fd still open), the next one written,
  // rotated and compressed, a third one written.
  appendFileSync(h.path, text(100, 120));
  rotate(h.path, false);
  writeFileSync(h.path, text(120, 170));
  rotate(h.path, true);
  writeFileSync(h.path, text(170, 180));
  await h.waitDelivered(180);
  await h.stop();
  t.same(nums(h), Array.from({ length: 180 }, (_, i) => i), 'every line once, in order');
});
