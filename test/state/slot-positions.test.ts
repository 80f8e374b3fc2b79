import t from 'tap';
import { lstatSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore } from '../../src/state/checkpoints.js';
import { SLOT_BYTES } from '../../src/state/slot-file.js';
import { RecordingLog } from '../helpers/tail-harness.js';

const id = (ino: number, fp = 'a'.repeat(32)) => ({ dev: 1, ino, fpLen: 64, fp });
const jsonOffset = (dir: string, ino: number) =>
  (JSON.parse(readFileSync(join(dir, 'checkpoints.json'), 'utf8')) as { files: Array<{ ino: number; offset: number }> }).files.find((f) => f.ino === ino)?.offset;
const tick = () => new Promise((r) => setImmediate(r));

/** A store whose commits are saved (remembered durably), then `offsets` committed, then killed. */
async function killedAfter(t: Tap.Test, dir: string, offsets: number[], ino = 7): Promise<void> {
  const store = await CheckpointStore.open(dir, new RecordingLog().logger);
  await store.remember('/var/log/audit.log', [{ id: id(ino), offset: 0 }], true);
  for (const o of offsets) {
    store.commit('/var/log/audit.log', id(ino), o);
    await tick();
  }
  t.equal(jsonOffset(dir, ino), 0, 'checkpoints.json has not been written since (its quick save is 50 ms away)');
  await store.abandon();
}

t.test('a commit is in positions.slots by the end of its tick: after kill -9 the next store starts there', async (t) => {
  const dir = t.testdir({});
  await killedAfter(t, dir, [100, 250, 4096]);
  const st = lstatSync(join(dir, 'positions.slots'));
  t.ok(st.isFile(), 'a regular file');
  t.equal(st.mode & 0o777, 0o600, 'mode 0600');
  const next = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.teardown(() => next.close());
  t.equal(next.get({ dev: 1, ino: 7 })?.offset, 4096, 'the last commit, not the older one in checkpoints.json');
  t.equal(next.get({ dev: 1, ino: 7 })?.path, '/var/log/audit.log', 'the path from checkpoints.json');
});

t.test('a torn newest slot: the other slot of its pair (the commit before) is used; a file the JSON does not know is not', async (t) => {
  const dir = t.testdir({});
  await killedAfter(t, dir, [100, 250]);
  const path = join(dir, 'positions.slots');
  const buf = readFileSync(path);
  // Pair 0 begins after the header; the two slots hold 100 and 250: damage the one holding 250.
  const slot = [SLOT_BYTES, 2 * SLOT_BYTES].find((at) => buf.subarray(at, at + SLOT_BYTES).includes(Buffer.from('"offset":250')))!;
  buf[slot + 30] ^= 0xff;
  writeFileSync(path, buf);
  const next = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.equal(next.get({ dev: 1, ino: 7 })?.offset, 100, 'the commit before the torn one');
  await next.abandon();

  // A slot of a file checkpoints.json does not list: its path is unknown, so it is left out.
  const other = t.testdir({});
  const store = await CheckpointStore.open(other, new RecordingLog().logger);
  store.commit('/var/log/audit.log', id(9), 500);
  await tick();
  await store.abandon();
  writeFileSync(join(other, 'checkpoints.json'), JSON.stringify({ version: 1, files: [] }));
  const again = await CheckpointStore.open(other, new RecordingLog().logger);
  t.teardown(() => again.close());
  t.equal(again.get({ dev: 1, ino: 9 }), undefined, 'not taken from the slots alone');
});

t.test('a forgotten file is forgotten at once, even while checkpoints.json still lists it; a state folder without positions.slots (older versions) still loads', async (t) => {
  const dir = t.testdir({
    'checkpoints.json': JSON.stringify({ version: 1, files: [{ path: '/a.log', dev: 1, ino: 3, fpLen: 0, fp: '', offset: 42, updatedAt: Date.now() }] }),
  });
  const store = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.equal(store.get({ dev: 1, ino: 3 })?.offset, 42, 'the JSON entry as it was');
  store.commit('/a.log', { dev: 1, ino: 3, fpLen: 0, fp: '' }, 50);
  store.forget({ dev: 1, ino: 3 });
  await tick();
  await store.abandon();
  t.equal(jsonOffset(dir, 3), 42, 'checkpoints.json still lists it (killed before its quick save)');
  const next = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.teardown(() => next.close());
  t.equal(next.get({ dev: 1, ino: 3 }), undefined);
});

t.test('a symlink planted at positions.slots is neither read nor written through', async (t) => {
  const dir = t.testdir({ 'precious.conf': 'x'.repeat(2000), state: {} });
  const state = join(dir, 'state');
  symlinkSync(join(dir, 'precious.conf'), join(state, 'positions.slots'));
  await killedAfter(t, state, [300]);
  t.equal(readFileSync(join(dir, 'precious.conf'), 'utf8'), 'x'.repeat(2000), 'target untouched');
  t.ok(lstatSync(join(state, 'positions.slots')).isFile(), 'the link itself was replaced by a regular file');
  t.equal(statSync(join(state, 'positions.slots')).mode & 0o777, 0o600);
});

t.test('another file (of another path) committed on an inode checkpoints.json gives to the old one, then kill -9: the old one is retired at load, and stays so', async (t) => {
  const dir = t.testdir({});
  const path = '/var/log/audit.log';
  const old = id(7, 'a'.repeat(32));
  const store = await CheckpointStore.open(dir, new RecordingLog().logger);
  await store.remember(path, [{ id: old, offset: 0 }], true);
  store.commit(path, old, 100, 100, 'c'.repeat(32));
  await tick();
  const before = readFileSync(join(dir, 'checkpoints.json'));
  // The inode number is another file's now: the commit retires the old one and starts a save of
  // checkpoints.json; a kill -9 before that save lands leaves the file as it was before.
  store.commit('/var/log/other.log', id(7, 'b'.repeat(32)), 50, 60, 'd'.repeat(32));
  await tick();
  await store.abandon();
  writeFileSync(join(dir, 'checkpoints.json'), before);
  const json = JSON.parse(readFileSync(join(dir, 'checkpoints.json'), 'utf8')) as { files: Array<{ fp: string }>; retired: unknown[] };
  t.same([json.files.map((f) => f.fp), json.retired], [['a'.repeat(32)], []], 'checkpoints.json still has the old file live, nothing retired');

  const next = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.match(next.get({ dev: 1, ino: 7 }), { fp: 'b'.repeat(32), offset: 50, size: 60, tail: 'd'.repeat(32), path: '/var/log/other.log' }, 'the new file from its slot, with its own path (the slot holds it when it fits)');
  t.match(next.retired(path), [{ fp: 'a'.repeat(32), offset: 100, size: 100, tail: 'c'.repeat(32), path }], 'the old one retired as it was last committed');
  await next.abandon();
  // Written before the slots started afresh (they no longer hold the retirement): a second kill -9 keeps it.
  const again = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.teardown(() => again.close());
  t.equal(again.retired(path).length, 1, 'still retired, once');
  t.equal(again.get({ dev: 1, ino: 7 })?.fp, 'b'.repeat(32));
});

t.test('a retired file (deleted, read to its end), then kill -9 before checkpoints.json says so: retired at load with its last position, not live', async (t) => {
  const dir = t.testdir({});
  const path = '/var/log/audit.log';
  const store = await CheckpointStore.open(dir, new RecordingLog().logger);
  await store.remember(path, [{ id: id(8), offset: 0 }], true);
  store.commit(path, id(8), 4096, 4096, 'e'.repeat(32));
  store.retire({ dev: 1, ino: 8 });
  await tick();
  await store.abandon();
  t.equal(jsonOffset(dir, 8), 0, 'checkpoints.json still lists it live');
  const next = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.teardown(() => next.close());
  t.equal(next.get({ dev: 1, ino: 8 }), undefined, 'not live');
  t.match(next.retired(path), [{ ino: 8, offset: 4096, tail: 'e'.repeat(32) }]);
});

t.test('the largest v2 entry fits a slot; one that does not falls back to checkpoints.json', async (t) => {
  const dir = t.testdir({});
  const big = Number.MAX_SAFE_INTEGER;
  const store = await CheckpointStore.open(dir, new RecordingLog().logger);
  const huge = { dev: big, ino: big, fpLen: 1024, fp: 'a'.repeat(32) };
  await store.remember('/a.log', [{ id: huge, offset: 0 }], true);
  store.commit('/a.log', huge, big, big, 'f'.repeat(32));
  store.retire(huge);
  await tick();
  await store.abandon();
  const next = await CheckpointStore.open(dir, new RecordingLog().logger);
  t.match(next.retired('/a.log'), [{ offset: big, tail: 'f'.repeat(32) }], 'entry and its retirement both fit (235 bytes of 238)');
  await next.abandon();
  // Too big (a path is not in the payload, so only a future field could do this): the pair is cleared
  // and the JSON entry, a little older, is what the next run finds.
  const { SlotPositions } = await import('../../src/state/slot-positions.js');
  const entries = new Map([['1:9', { path: '/b.log', dev: 1, ino: 9, fpLen: 0, fp: '', pad: 'x'.repeat(300) }]]);
  const other = t.testdir({});
  const slots = await SlotPositions.open(other, entries, 0, new RecordingLog().logger);
  slots.changed('1:9');
  slots.flush();
  await slots.close();
  t.same(SlotPositions.load(other, new Map([['1:9', { path: '/b.log', dev: 1, ino: 9, fpLen: 0, fp: '' }]]), (e) => e as never, () => false).retired, [], 'nothing read from a slot it did not fit');
});
