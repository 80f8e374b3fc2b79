import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CHECKPOINT_VERSION, validateCheckpoints } from '../../src/state/checkpoint-schema.js';
import { CheckpointStore } from '../../src/state/checkpoints.js';
import { RecordingLog } from '../helpers/tail-harness.js';

const entry = { path: '/var/log/audit.log', dev: 1, ino: 2, fpLen: 3, fp: 'a'.repeat(32), offset: 10, updatedAt: Date.now() };

t.test('version 1 state files (no size, no retired list) still load', async (t) => {
  const v1 = validateCheckpoints({ version: 1, files: [entry] });
  t.same(v1, { entries: [entry], retired: [], dropped: [] });
  t.notOk('size' in v1.entries[0], 'no size is made up');
});

t.test('version 2: sizes and retired files; a bad size or retired entry is dropped alone', async (t) => {
  const v2 = validateCheckpoints({ version: 2, files: [{ ...entry, size: 20 }, { ...entry, ino: 3, size: -1 }], retired: [{ ...entry, ino: 4, offset: 30, size: 30 }, { nope: 1 }] });
  t.same(v2.entries, [{ ...entry, size: 20 }]);
  t.same(v2.retired, [{ ...entry, ino: 4, offset: 30, size: 30 }]);
  t.same(v2.dropped, ['entry 1: size is not a non-negative integer', 'retired entry 1: path is not a file path']);
  t.throws(() => validateCheckpoints({ version: 3, files: [] }), { message: 'not a version 1 or 2 checkpoint file' });
});

t.test('a retired file leaves the inode table, keeps its first bytes and offset, and is saved as version 2', async (t) => {
  const dir = t.testdir({});
  writeFileSync(join(dir, 'checkpoints.json'), JSON.stringify({ version: 1, files: [entry] }));
  const log = new RecordingLog();
  const store = await CheckpointStore.open(dir, log.logger);
  store.commit(entry.path, { dev: 1, ino: 2, fpLen: 3, fp: entry.fp }, 15, 40);
  t.equal(store.get({ dev: 1, ino: 2 })?.size, 40, 'the size seen is saved with the position');
  store.retire({ dev: 1, ino: 2 });
  t.equal(store.get({ dev: 1, ino: 2 }), undefined, 'the inode is free for another file');
  t.match(store.retired(entry.path), [{ ino: 2, offset: 15, size: 40 }]);
  await store.close();
  const saved = JSON.parse(readFileSync(join(dir, 'checkpoints.json'), 'utf8'));
  t.equal(saved.version, CHECKPOINT_VERSION);
  t.match(saved.retired, [{ ino: 2, offset: 15 }]);
  const again = await CheckpointStore.open(dir, log.logger);
  t.equal(again.retired(entry.path).length, 1, 'read back');
  await again.close();
});
