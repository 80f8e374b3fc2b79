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

t.test('as the copies wrap around the ring: always the longest run of newest whole frames that fits', async (t) => {
  const fc = (await import('fast-check')).default;
  // Printable ASCII, digits and spaces included: frame starts are found by the counts, not the bytes.
  const msg = fc.string({ minLength: 0, maxLength: 40 }).map((s) => s.replace(/[^ -~]/g, '7'));
  fc.assert(
    fc.property(fc.integer({ min: 45, max: 300 }), fc.array(fc.array(msg, { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 40 }), (max, batches) => {
      const w = new ResendWindow(max);
      const all: string[] = [];
      for (const b of batches) {
        w.record(frames(...b), b.length);
        all.push(...b.map((m) => frame(m).toString()));
      }
      let expected = '';
      let count = 0;
      for (let i = all.length - 1; i >= 0 && expected.length + all[i].length <= max; i--, count++) expected = all[i] + expected;
      w.lost();
      const chunks = w.takeReplay() ?? [];
      return chunks.map((c) => c.frames.toString()).join('') === expected && w.heldBytes === expected.length && chunks.reduce((n, c) => n + c.count, 0) === count;
    }),
    { numRuns: 300 },
  );
  t.pass('300 runs');
});
