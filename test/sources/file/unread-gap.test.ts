import t from 'tap';
import { readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Rfc5424Framer } from '../../../src/framing/rfc5424.js';
import { Stats } from '../../../src/telemetry/stats.js';
import { TailHarness } from '../../helpers/tail-harness.js';

/**
 * A file deleted (kube-apiserver's maxbackup, maxage) before all of it was read, with no .gz to read
 * the rest from: the unread bytes are counted, logged once, and named to the drain in a gap record
 * like the spill's (gap@32473), with the file and the byte range.
 */

const text = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `line ${from + i} ${'x'.repeat(30)}\n`).join('');

/** Rotated to `backup` and deleted while stopped (no .gz of it), a new file from line `from`; run until `delivered` messages. */
async function deletedWhileStopped(h: TailHarness, backup: string, from: number, delivered: number): Promise<void> {
  const moved = join(h.path, '..', backup);
  renameSync(h.path, moved);
  unlinkSync(moved);
  writeFileSync(h.path, text(from, from + 10));
  await h.start();
  await h.waitDelivered(delivered);
  await h.stop();
}

t.test('a rotated file deleted with bytes the reader had seen but not handed on: counted, logged once, one gap record', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const stats = new Stats();
  const gapFramer = new Rfc5424Framer({ facility: 1, severity: 4, hostname: 'h', appName: 'auditfwd', maxMessageBytes: 64 * 1024 });
  const h = new TailHarness(path, join(dir, 'state'), { stats, gapFramer });
  t.teardown(() => h.stop());
  writeFileSync(path, text(0, 100));
  await h.start();
  await h.waitDelivered(100);
  await h.stop();
  // What a kill -9 leaves: the reader had seen the file grow to 5000 bytes more than it handed on.
  const file = join(dir, 'state', 'checkpoints.json');
  const state = JSON.parse(readFileSync(file, 'utf8'));
  const offset = state.files[0].offset;
  state.files[0].size = offset + 5000;
  writeFileSync(file, JSON.stringify(state));
  // positions.slots (a copy of the entries, laid over checkpoints.json at load) would undo the edit.
  rmSync(join(dir, 'state', 'positions.slots'));
  await deletedWhileStopped(h, 'audit-2026-11-30T10-00-00.000.log', 100, 111);
  const gaps = h.delivered.filter((m) => m.includes('gap@32473'));
  t.equal(gaps.length, 1, 'one gap record');
  t.match(gaps[0], new RegExp(`from="${offset}" to="${offset + 5000}"`), 'the byte range never read');
  t.match(gaps[0], /bytes="5000"/);
  t.match(gaps[0], /deleted before it was read/);
  t.equal(stats.bytesUnread.get(path), 5000, 'auditfwd_bytes_unread_total');
  t.equal(h.log.events.filter((e) => /deleted before it was read/.test(e.msg)).length, 1, 'logged once');
  t.same(h.delivered.filter((m) => m.startsWith('line')).map((m) => Number(m.split(' ')[1])), Array.from({ length: 110 }, (_, i) => i), 'the lines, once');

  // The next start does not report it again.
  await h.start();
  writeFileSync(path, text(110, 111), { flag: 'a' });
  await h.waitDelivered(112);
  await h.stop();
  t.equal(h.delivered.filter((m) => m.includes('gap@32473')).length, 1, 'still one gap record');
  t.equal(stats.bytesUnread.get(path), 5000);
});

t.test('a deleted file read to its end is no gap', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const stats = new Stats();
  const h = new TailHarness(path, join(dir, 'state'), { stats });
  t.teardown(() => h.stop());
  writeFileSync(path, text(0, 50));
  await h.start();
  await h.waitDelivered(50);
  await h.stop();
  await deletedWhileStopped(h, 'audit.log.1', 50, 60);
  t.equal(stats.bytesUnread.size, 0);
  t.equal(h.delivered.length, 60);
});
