import t from 'tap';
import { readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBuffer } from '../../../src/buffer/memory.js';
import type { Batch } from '../../../src/batch.js';
import { FileTailer } from '../../../src/sources/file/tailer.js';
import { CheckpointStore } from '../../../src/state/checkpoints.js';
import { Stats } from '../../../src/telemetry/stats.js';
import { BareEncoder, RecordingLog, TailHarness } from '../../helpers/tail-harness.js';

const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${from + i} ${'x'.repeat(100)}\n`).join('');

/** The state file's inodes, as a process started now would read them. */
const savedInodes = (stateDir: string): number[] => {
  try {
    return (JSON.parse(readFileSync(join(stateDir, 'checkpoints.json'), 'utf8')) as { files: Array<{ ino: number }> }).files.map((f) => f.ino);
  } catch {
    return [];
  }
};

/** A buffer whose sink never hands anything on: what a kill -9 finds right after lines went out unsaved. */
class FirstLinesBuffer extends MemoryBuffer {
  onFirstLines: () => void = () => {};
  private seen = false;
  override push(batch: Batch): Promise<void> {
    if (batch.count > 0 && !this.seen) {
      this.seen = true;
      this.onFirstLines();
    }
    return super.push(batch);
  }
}

t.test('a fresh state folder knows the first file on disk before a line of it is read; killed then, the next run finds it renamed', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const stateDir = join(dir, 'state');
  writeFileSync(path, lines(0, 50));
  const ino = statSync(path).ino;

  // Run 1, with no history at all: its lines go out, then it dies before any position is committed.
  const log = new RecordingLog();
  const store = await CheckpointStore.open(stateDir, log.logger);
  const buffer = new FirstLinesBuffer(1024 * 1024);
  let atFirstLines: number[] | undefined;
  const firstLines = new Promise<void>((resolve) => {
    buffer.onFirstLines = () => {
      atFirstLines = savedInodes(stateDir);
      resolve();
    };
  });
  const tailer = new FileTailer(path, { encoder: new BareEncoder(), buffer, stats: new Stats(), checkpoints: store, log: log.logger, startAt: 'beginning', once: false, pollMs: 20, maxLineBytes: 65536 });
  const running = tailer.run();
  await firstLines;
  tailer.stop(); // no store.close(): kill -9 saves nothing more
  await running;
  t.same(atFirstLines, [ino], 'the file was in the state file before its first lines were pushed');

  // While stopped, lumberjack renames it and writes a new one.
  renameSync(path, join(dir, 'audit-2026-11-30T12-00-00.000.log'));
  writeFileSync(path, lines(50, 80));

  const h = new TailHarness(path, stateDir);
  await h.start();
  await h.waitDelivered(80).finally(() => h.stop());
  t.same(
    h.delivered.map((l) => Number(l.split(' ')[0])),
    Array.from({ length: 80 }, (_, i) => i),
    'the renamed file from its start, then the new one: nothing lost',
  );
});

t.test('killed while catching up rotated backups: the next run still reads the backups it had not reached', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const stateDir = join(dir, 'state');
  const backup = (n: number) => join(dir, `audit-2026-11-30T12-00-0${n}.000.log`);
  writeFileSync(path, lines(0, 10));
  const first = new TailHarness(path, stateDir);
  await first.start();
  await first.waitDelivered(10).finally(() => first.stop());

  // While stopped, lumberjack rotates three times.
  renameSync(path, backup(1));
  writeFileSync(path, lines(10, 20));
  renameSync(path, backup(2));
  writeFileSync(path, lines(20, 30));
  renameSync(path, backup(3));
  writeFileSync(path, lines(30, 40));
  // The next run commits a second after these renames: by their times, the backups now look older
  // than its last commit (what a crash loop on a busy master looks like).
  await new Promise((resolve) => setTimeout(resolve, 1100));

  // That run hands on the first backup's lines only, saves, and is killed.
  const log = new RecordingLog();
  const store = await CheckpointStore.open(stateDir, log.logger);
  const buffer = new MemoryBuffer(1024 * 1024);
  const tailer = new FileTailer(path, { encoder: new BareEncoder(), buffer, stats: new Stats(), checkpoints: store, log: log.logger, startAt: 'beginning', once: false, pollMs: 20, maxLineBytes: 65536, readChunkBytes: 4096 });
  const running = tailer.run();
  let handedOn = '';
  while (!handedOn.includes(' 19 x')) {
    await buffer.waitForData();
    const b = buffer.take();
    if (!b) continue;
    handedOn += b.frames.toString('latin1');
    buffer.handedOn(b);
  }
  await store.save();
  tailer.stop();
  await running;

  const h = new TailHarness(path, stateDir);
  await h.start();
  await h.waitDelivered(20).finally(() => h.stop());
  const got = new Set(h.delivered.map((l) => Number(l.split(' ')[0])));
  t.same(
    Array.from({ length: 20 }, (_, i) => i + 20).filter((n) => !got.has(n)),
    [],
    'every line of the backups not reached, and of the live file',
  );
});

t.test('a rotation while the next run plans its backlog: the file renamed meanwhile is read too', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const stateDir = join(dir, 'state');
  writeFileSync(path, lines(0, 10));
  const first = new TailHarness(path, stateDir);
  await first.start();
  await first.waitDelivered(10).finally(() => first.stop());
  // While stopped: more lines, then a rename and a new live file.
  writeFileSync(path, lines(0, 15));
  renameSync(path, join(dir, 'audit-2026-11-30T12-00-01.000.log'));
  writeFileSync(path, lines(15, 25));

  const log = new RecordingLog();
  const store = await CheckpointStore.open(stateDir, log.logger);
  // The next rotation lands after the plan has listed the folder, before the first open.
  const remember = store.remember.bind(store);
  let rotated = false;
  store.remember = async (...args) => {
    if (!rotated) {
      rotated = true;
      renameSync(path, join(dir, 'audit-2026-11-30T12-00-02.000.log'));
      writeFileSync(path, lines(25, 35));
    }
    return remember(...args);
  };
  const buffer = new MemoryBuffer(1024 * 1024);
  const tailer = new FileTailer(path, { encoder: new BareEncoder(), buffer, stats: new Stats(), checkpoints: store, log: log.logger, startAt: 'beginning', once: false, pollMs: 20, maxLineBytes: 65536 });
  const running = tailer.run();
  const got = new Set<number>();
  while (got.size < 25) {
    await buffer.waitForData();
    const b = buffer.take();
    if (!b) continue;
    for (const m of b.frames.toString('latin1').matchAll(/\d+ (\d+) x/g)) got.add(Number(m[1]));
    buffer.handedOn(b);
    if (got.has(34) && got.size < 25) break; // the live file is done: what is missing stays missing
  }
  tailer.stop();
  await running;
  await store.close();
  t.same(
    Array.from({ length: 25 }, (_, i) => i + 10).filter((n) => !got.has(n)),
    [],
    'the rest of the known file, the file renamed during the plan, and the live one',
  );
});
