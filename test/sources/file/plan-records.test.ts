import t from 'tap';
import { readFileSync, renameSync, statSync, unlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { planResume } from '../../../src/sources/file/resume.js';
import { gzipBackups, gzipNow, rotatedAt } from '../../../src/sources/file/gzip-backups.js';
import { CheckpointStore } from '../../../src/state/checkpoints.js';
import { fingerprintOf, identifyWithHead } from '../../../src/state/file-identity.js';
import { open } from 'node:fs/promises';
import { RecordingLog, TailHarness } from '../../helpers/tail-harness.js';

/**
 * What a start plans and records before reading a line: a run stopped right after planning (SIGTERM
 * during a slow start) must leave the next run looking at the same backups, and a .gz planned is read
 * where it is by then (logrotate shifts .N.gz names).
 */

const text = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${String(from + i).padStart(6, '0')} ${'b'.repeat(70)}\n`).join('');

/** A run that reads 20 lines of `path` and stops; its harness, to start again. */
async function readTwenty(t: Tap.Test, dir: string, path: string): Promise<TailHarness> {
  const h = new TailHarness(path, join(dir, 'state'));
  t.teardown(() => h.stop());
  writeFileSync(path, text(0, 20));
  await h.start();
  await h.waitDelivered(20);
  await h.stop();
  return h;
}

function gzipAway(path: string, backup: string): void {
  renameSync(path, backup);
  writeFileSync(`${backup}.gz`, gzipSync(readFileSync(backup)));
  unlinkSync(backup);
}

t.test('a run stopped after planning: the next still reads a .gz made before that plan and after the last line read', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const h = await readTwenty(t, dir, path);
  // The last line was read a while ago (the next start was slow).
  const lastRead = Date.now() - 10_000;
  const file = join(dir, 'state', 'checkpoints.json');
  const state = JSON.parse(readFileSync(file, 'utf8'));
  for (const c of state.files) c.updatedAt = lastRead;
  writeFileSync(file, JSON.stringify(state));
  // Stopped: the file read is rotated with more lines and gzipped; the plan of a run finds its .gz.
  writeFileSync(path, text(20, 30), { flag: 'a' });
  gzipAway(path, join(dir, 'audit-2026-11-30T10-00-01.000.log'));
  const then = new Date(lastRead + 1000);
  utimesSync(join(dir, 'audit-2026-11-30T10-00-01.000.log.gz'), then, then);
  writeFileSync(path, text(30, 40));
  const log = new RecordingLog().logger;
  const store = await CheckpointStore.open(join(dir, 'state'), log);
  const first = await planResume(path, store, log);
  t.same(first.backlog.map((u) => u.path), [join(dir, 'audit-2026-11-30T10-00-01.000.log.gz')]);
  await store.close();
  // That run stopped before reading; a .gz it did not list (the live file then, rotated as it planned).
  gzipAway(path, join(dir, 'audit-2026-11-30T10-00-02.000.log'));
  const when = new Date(lastRead + 2000);
  utimesSync(join(dir, 'audit-2026-11-30T10-00-02.000.log.gz'), when, when);
  writeFileSync(path, text(40, 50));
  await h.start();
  await h.waitDelivered(50);
  await h.stop();
  t.same(h.delivered.slice(20).map((l) => Number(l.slice(0, 6))), Array.from({ length: 30 }, (_, i) => 20 + i), 'the rest of both .gz, then the live file, once each');
});

t.test('a .gz planned and shifted to another name before it is read: read there; gone, or its inode number another .gz now: not read', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'audit.log');
  const two = join(dir, 'audit.log.2.gz');
  writeFileSync(two, gzipSync(text(0, 10)));
  const head = Buffer.from(text(0, 10).slice(0, 1024));
  const st = statSync(two);
  const u = { path: two, offset: 0, mtimeMs: st.mtimeMs, gz: true, gzId: { dev: st.dev, ino: st.ino, fpLen: head.length, fp: fingerprintOf(head) } };
  renameSync(two, join(dir, 'audit.log.3.gz'));
  writeFileSync(two, gzipSync(text(10, 20)));
  t.equal(await gzipNow(path, u), join(dir, 'audit.log.3.gz'));
  unlinkSync(join(dir, 'audit.log.3.gz'));
  t.not(await gzipNow(path, u), two, 'the new .2.gz is another file (unless it took the inode number, which its first bytes tell)');
});

t.test('a lumberjack .gz is ordered by the rotation its name tells (it is compressed later); logrotate .N.gz by its time', async (t) => {
  const dir = t.testdir({});
  const lj = join(dir, 'audit-2026-11-30T15-38-34.072.log.gz');
  const copy = join(dir, 'audit.log.2.gz');
  writeFileSync(lj, gzipSync('a\n'));
  writeFileSync(copy, gzipSync('b\n'));
  // The copytruncate copy was taken after the rotation and before lumberjack's mill compressed the backup.
  const rotated = Date.UTC(2026, 10, 30, 15, 38, 34, 72);
  utimesSync(copy, new Date(rotated + 200), new Date(rotated + 200));
  utimesSync(lj, new Date(rotated + 400), new Date(rotated + 400));
  t.equal(rotatedAt({ path: lj, st: statSync(lj) }), rotated);
  t.equal(rotatedAt({ path: copy, st: statSync(copy) }), rotated + 200);
  t.same((await gzipBackups(join(dir, 'audit.log'))).map((g) => g.path), [lj, copy], 'oldest content first');
});

t.test('killed while reading the backlog: the live file of that start, rotated and gzipped since, is read from its .gz', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const h = await readTwenty(t, dir, path);
  // Stopped: rotated (the rest to read), a new live file; a start plans and reads that backlog only.
  writeFileSync(path, text(20, 30), { flag: 'a' });
  renameSync(path, join(dir, 'audit-2026-11-30T10-00-01.000.log'));
  writeFileSync(path, text(30, 40));
  const log = new RecordingLog().logger;
  let store = await CheckpointStore.open(join(dir, 'state'), log);
  await planResume(path, store, log);
  // Its commits of the backlog are later than anything the live file's backup will have.
  const backup = join(dir, 'audit-2026-11-30T10-00-01.000.log');
  const fh = await open(backup, 'r');
  store.commit(path, (await identifyWithHead(fh)).id, statSync(backup).size);
  await fh.close();
  await store.close();
  gzipAway(path, join(dir, 'audit-2026-11-30T10-00-02.000.log'));
  const back = new Date(Date.now() - 5000);
  utimesSync(join(dir, 'audit-2026-11-30T10-00-02.000.log.gz'), back, back);
  writeFileSync(path, text(40, 50));
  store = await CheckpointStore.open(join(dir, 'state'), log);
  const plan = await planResume(path, store, log);
  await store.close();
  t.ok(plan.backlog.some((u) => u.path.endsWith('10-00-02.000.log.gz') && u.offset === 0), 'its .gz, from its start');
});
