import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore } from '../../src/state/checkpoints.js';
import { validateCheckpoints } from '../../src/state/checkpoint-schema.js';
import { effective, readBootId, validSoft } from '../../src/state/soft-position.js';
import { RecordingLog } from '../helpers/tail-harness.js';

const BOOT = '0f1e2d3c-4b5a-4978-8695-a4b3c2d1e0f9';
const LATER = '11111111-2222-4333-8444-555555555555';
const id = (ino: number) => ({ dev: 1, ino, fpLen: 64, fp: 'a'.repeat(32) });
const file = { dev: 1, ino: 7 };
const TAIL = 'b'.repeat(32);
const open = (dir: string, boot: string | null) => CheckpointStore.open(dir, new RecordingLog().logger, { boot });
const tick = () => new Promise((r) => setImmediate(r));

/** Durable at 1000, soft at 5000 (in `boot`), then killed (positions.slots holds it, checkpoints.json not yet). */
async function killedWithSoft(dir: string, boot: string | null = BOOT): Promise<void> {
  const store = await open(dir, boot);
  await store.remember('/var/log/audit.log', [{ id: id(7), offset: 0 }], true);
  store.commit('/var/log/audit.log', id(7), 1000);
  store.commitSoft(id(7), 5000, 6000, TAIL);
  await tick();
  await store.abandon();
}

t.test('after a kill -9 in the same boot the soft position is resumed from; in another boot the durable one', async (t) => {
  const dir = t.testdir({});
  await killedWithSoft(dir);
  const json = JSON.parse(readFileSync(join(dir, 'checkpoints.json'), 'utf8')) as { files: Array<{ offset: number; soft?: unknown }> };
  t.same([json.files[0].offset, json.files[0].soft], [0, undefined], 'checkpoints.json not saved since: what follows comes from positions.slots');
  const same = await open(dir, BOOT);
  t.equal(same.get(file)?.offset, 5000, 'same boot: the spill still holds the lines up to the soft position');
  t.equal(same.get(file)?.tail, TAIL, 'with the hash of the bytes before it');
  t.equal(same.all()[0].offset, 5000, 'all() agrees');
  t.equal((same.get(file) as { soft?: unknown }).soft, undefined, 'sources never see the soft field');
  await same.abandon();
  const other = await open(dir, LATER);
  t.equal(other.get(file)?.offset, 1000, 'another boot (a power loss): the durable offset, lines repeated, none lost');
  await other.close();
  const saved = JSON.parse(readFileSync(join(dir, 'checkpoints.json'), 'utf8')) as { files: Array<{ soft?: unknown }> };
  t.equal(saved.files[0].soft, undefined, 'the other boot dropped it from the state file');
  const none = await open(dir, null);
  t.equal(none.get(file)?.offset, 1000);
  await none.close();
});

t.test('no boot id: no soft position is written or used', async (t) => {
  const dir = t.testdir({});
  await killedWithSoft(dir, null);
  const store = await open(dir, BOOT);
  t.equal(store.get(file)?.offset, 1000, 'commitSoft did nothing without a boot id');
  await store.close();
});

t.test('a durable commit keeps the soft position while behind it, and ends it once it reaches it or goes back', async (t) => {
  const dir = t.testdir({});
  const store = await open(dir, BOOT);
  await store.remember('/var/log/audit.log', [{ id: id(7), offset: 0 }], true);
  store.commit('/var/log/audit.log', id(7), 1000);
  store.commitSoft(id(7), 5000);
  store.commitSoft(id(7), 4000);
  t.equal(store.get(file)?.offset, 5000, 'a soft position never goes back');
  store.commitSoft(id(7), 900);
  t.equal(store.get(file)?.offset, 5000, 'nor behind the durable one');
  store.commit('/var/log/audit.log', id(7), 3000);
  t.equal(store.get(file)?.offset, 5000, 'durable 3000 behind soft 5000: soft still ahead');
  store.commit('/var/log/audit.log', id(7), 5000);
  store.commit('/var/log/audit.log', id(7), 6000);
  store.commitSoft(id(7), 7000);
  store.commit('/var/log/audit.log', id(7), 10);
  t.equal(store.get(file)?.offset, 10, 'a position going back (truncated, read again) ends the soft one');
  store.commitSoft(id(9), 100);
  t.equal(store.get({ dev: 1, ino: 9 }), undefined, 'no soft position for a file not known yet');
  await store.close();
});

t.test('the soft field is validated: a bad one is ignored, the entry kept', async (t) => {
  const entry = { path: '/l', dev: 1, ino: 2, fpLen: 0, fp: '', offset: 10, updatedAt: 5 };
  const good = { offset: 20, boot: BOOT, at: 6, tail: TAIL };
  t.same(validateCheckpoints({ version: 2, files: [{ ...entry, soft: good }] }).entries[0].soft, good);
  const bad = [null, 3, [], { ...good, offset: 10 }, { ...good, offset: -1 }, { ...good, boot: 'x' }, { ...good, boot: 7 }, { ...good, tail: 'XYZ' }, { ...good, at: 1.5 }, { offset: 20, boot: BOOT }];
  for (const soft of bad) {
    const v = validateCheckpoints({ version: 2, files: [{ ...entry, soft }] });
    t.equal(v.entries.length, 1, `entry kept with soft ${JSON.stringify(soft)}`);
    t.equal(v.entries[0].soft, undefined, 'soft ignored');
    t.same(v.dropped, []);
  }
  t.equal(validSoft(good, 20), undefined, 'not ahead of the durable offset: ignored');
  t.same(validateCheckpoints({ version: 2, files: [entry] }).entries[0], entry, 'an entry without one loads unchanged');
  t.same(effective({ ...entry, soft: good }, LATER), entry, 'another boot: the durable entry');
  t.same(effective({ ...entry, soft: good }, BOOT), { ...entry, offset: 20, updatedAt: 6, size: 20, tail: TAIL });
});

t.test('a damaged soft field in checkpoints.json: the durable offset, no crash', async (t) => {
  const dir = t.testdir({
    'checkpoints.json': JSON.stringify({ version: 2, files: [{ path: '/l', dev: 1, ino: 7, fpLen: 0, fp: '', offset: 10, updatedAt: Date.now(), soft: { offset: 'x', boot: BOOT, at: 1 } }] }),
  });
  const store = await open(dir, BOOT);
  t.equal(store.get(file)?.offset, 10);
  await store.close();
});

t.test('the boot id: read from the kernel when it is well formed, else none', async (t) => {
  const dir = t.testdir({ ok: `${BOOT}\n`, bad: 'not-a-boot-id\n' });
  t.equal(readBootId(join(dir, 'ok')), BOOT);
  t.equal(readBootId(join(dir, 'bad')), undefined);
  t.equal(readBootId(join(dir, 'missing')), undefined);
});

t.test('a v1 slot file (256-byte slots) is still read', async (t) => {
  const dir = t.testdir({});
  const store = await open(dir, null);
  await store.remember('/var/log/audit.log', [{ id: id(7), offset: 0 }], true);
  await store.abandon();
  // Written by hand as a v1 file: header, then pair 0 with one record at offset 777.
  const { crc32 } = await import('../../src/buffer/spill/crc32.js');
  const buf = Buffer.alloc(256 * 3);
  Buffer.from('auditfwd slots v1\n').copy(buf);
  const payload = Buffer.from(JSON.stringify({ path: '/var/log/audit.log', ...id(7), offset: 777, updatedAt: Date.now(), size: 777 }));
  const s = buf.subarray(256, 512);
  s.writeUInt32BE(0x4146534c, 0);
  s.writeDoubleBE(1e6, 8);
  s.writeUInt16BE(payload.length, 16);
  payload.copy(s, 18);
  s.writeUInt32BE(crc32(s.subarray(8, 18 + payload.length)), 4);
  writeFileSync(join(dir, 'positions.slots'), buf);
  const next = await open(dir, null);
  t.equal(next.get(file)?.offset, 777);
  await next.close();
});
