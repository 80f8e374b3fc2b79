import t from 'tap';
import { appendFileSync, closeSync, copyFileSync, openSync, renameSync, statSync, truncateSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { TailHarness, tally } from '../../helpers/tail-harness.js';

/**
 * A crash loop on a master with both rotators: auditfwd restarts behind, reads rotated files, and
 * meanwhile lumberjack opens a new audit.log and logrotate copytruncates it to audit.log.1. Killed
 * before its catch-up reached the path, the next run must still read that copy: before, it knew the
 * copy by nothing (not its inode, not its bytes) and by its time it looked older than the catch-up's
 * commits, so its lines were lost (docs/delivery.md listed it as a limit).
 */

const text = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${String(from + i).padStart(6, '0')} ${'c'.repeat(70)}\n`).join('');
const numbers = (h: TailHarness) => h.delivered.map((l) => Number(l.slice(0, 6)));

t.test('a new file at the path, copytruncated while rotated files are read, then kill -9: its copy is read', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  // Small reads: the catch-up takes many of them, and the path is looked at between them.
  const h = new TailHarness(path, join(dir, 'state'), { readChunkBytes: 16 * 1024 });
  t.teardown(() => h.stop());
  writeFileSync(path, text(0, 20));
  await h.start();
  await h.waitDelivered(20);
  await h.stop();

  // Stopped: 6,000 more lines, lumberjack's rename, a new file.
  appendFileSync(path, text(20, 6020));
  renameSync(path, join(dir, 'audit-2026-11-30T10-00-01.000.log'));
  writeFileSync(path, text(6020, 6040));

  // The next run catches up, held back by a drain that stops reading.
  h.pause();
  const mark = h.log.events.length;
  await h.start();
  await h.log.waitFor(mark, (e) => e.msg === 'following rotated file');
  // Lumberjack rotates again: a new audit.log, never opened by this run.
  renameSync(path, join(dir, 'audit-2026-11-30T10-00-02.000.log'));
  writeFileSync(path, text(6040, 6100));
  h.resume();
  await h.waitDelivered(20 + 1500);
  h.pause();
  const st = statSync(path);
  t.ok((h.store.get(st)?.fpLen ?? 0) >= 64, 'the new file is recorded by its first bytes before it is opened');

  // logrotate's copytruncate, then lumberjack writes on at its own offset (a NUL hole before).
  copyFileSync(path, join(dir, 'audit.log.1'));
  truncateSync(path, 0);
  const fd = openSync(path, 'r+');
  writeSync(fd, Buffer.from(text(6100, 6110)), 0, undefined, st.size);
  closeSync(fd);
  // Time passes while the catch-up goes on (what made the copy look old): the commits after it are
  // more than the file clock's slack (1 s) later.
  await new Promise((r) => setTimeout(r, 1200));
  h.resume();
  await h.waitDelivered(20 + 3000);
  t.ok(numbers(h).every((n) => n < 6020), 'killed while still reading the rotated file');
  await h.crash();

  await h.start();
  try {
    while (tally(numbers(h), 6110).lost > 0) await h.waitDelivered(h.delivered.length + 1, 5000);
  } catch {
    // Nothing more came: what is missing is reported below.
  }
  await h.stop();
  const r = tally(numbers(h), 6110);
  t.equal(r.lost, 0, 'nothing lost');
  t.equal(r.outOfOrder, 0, 'in order');
});
