import t from 'tap';
import { ResendWindow } from '../../src/sinks/resend-window.js';

const frame = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
const frames = (...msgs: string[]) => Buffer.concat(msgs.map(frame));
const replayed = (w: ResendWindow) => (w.takeReplay() ?? []).map((c) => c.frames.toString()).join('');

t.test('nothing is replayed unless a connection was lost, and then once', async (t) => {
  const w = new ResendWindow(1024);
  w.record(frames('a', 'b'), 2);
  t.equal(w.takeReplay(), undefined);
  w.lost();
  t.equal(replayed(w), '1 a1 b');
  t.equal(w.takeReplay(), undefined, 'once per loss');
});

t.test('keeps the last maxBytes of whole frames, oldest first, with their count', async (t) => {
  // Messages ending in digits: a frame start is never guessed from the bytes before it.
  const w = new ResendWindow(20);
  w.record(frames('msg 11', 'msg 22'), 2); // 8 + 8 bytes
  w.record(frames('msg 33'), 1); // 24 in all: the first frame goes
  t.equal(w.heldBytes, 16);
  w.lost();
  const chunks = w.takeReplay()!;
  t.same(chunks.map((c) => [c.frames.toString(), c.count]), [['6 msg 22', 1], ['6 msg 33', 1]]);
});

t.test('a batch larger than the window keeps its last whole frames', async (t) => {
  const w = new ResendWindow(10);
  w.record(frames('aaaa', 'bbbb', 'cccc'), 3);
  w.lost();
  const chunks = w.takeReplay()!;
  t.same(chunks.map((c) => [c.frames.toString(), c.count]), [['4 cccc', 1]]);
  t.ok(w.heldBytes <= 10);
});

t.test('a single frame larger than the window is not kept; 0 keeps nothing', async (t) => {
  const w = new ResendWindow(4);
  w.record(frames('too long'), 1);
  t.equal(w.heldBytes, 0);
  w.lost();
  t.equal(w.takeReplay(), undefined);
  const off = new ResendWindow(0);
  off.record(frames('a'), 1);
  off.lost();
  t.equal(off.takeReplay(), undefined);
});

t.test('the window holds copies: the batch memory may be reused once handed on', async (t) => {
  const w = new ResendWindow(100);
  const b = frames('abc');
  w.record(b, 1);
  b.fill(0x30);
  w.lost();
  t.equal(replayed(w), '3 abc');
});

t.test('only what the lost connection carried is sent again; a replay is carried by the new connection', async (t) => {
  const [c1, c2, idle] = [{}, {}, {}];
  const w = new ResendWindow(1024);
  w.record(frames('a'), 1, c1);
  w.lost(idle);
  t.equal(w.takeReplay(c2), undefined, 'an idle connection (a pool member on standby) that drops causes no resend');
  w.lost(c1);
  t.same(w.takeReplay(c2)!.map((c) => c.frames.toString()), ['1 a']);
  w.record(frames('b'), 1, c2);
  w.lost(c1);
  t.equal(w.takeReplay(c2), undefined, 'c1 carries nothing any more');
  w.lost(c2);
  t.same(w.takeReplay({})!.map((c) => c.frames.toString()), ['1 a', '1 b'], 'c2 carried the replay and its own');
});
