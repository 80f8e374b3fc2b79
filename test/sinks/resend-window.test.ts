import t from 'tap';
import { AUTO_CEILING_BYTES, autoWindowBytes, FALLBACK_BUFFERS, fileStore, kernelBuffers, memoryStore, ResendWindow, type WindowStore } from '../../src/sinks/resend-window.js';
import { taken } from '../helpers/resend.js';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { OwedFile } from '../../src/sinks/owed-file.js';

const frame = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
const frames = (...msgs: string[]) => Buffer.concat(msgs.map(frame));
const replayed = (w: ResendWindow) => (taken(w) ?? []).map((c) => c.frames.toString()).join('');

t.test('nothing is replayed unless a connection was lost, and then once', async (t) => {
  const w = new ResendWindow(1024);
  w.record(frames('a', 'b'), 2);
  t.equal(taken(w), undefined);
  w.lost();
  t.equal(replayed(w), '1 a1 b');
  t.equal(taken(w), undefined, 'once per loss');
});

t.test('keeps the last maxBytes of whole frames, oldest first, with their count', async (t) => {
  // Messages ending in digits: a frame start is never guessed from the bytes before it.
  const w = new ResendWindow(20);
  w.record(frames('msg 11', 'msg 22'), 2); // 8 + 8 bytes
  w.record(frames('msg 33'), 1); // 24 in all: the first frame goes
  t.equal(w.heldBytes, 16);
  w.lost();
  const chunks = taken(w)!;
  t.same(chunks.map((c) => [c.frames.toString(), c.count]), [['6 msg 22', 1], ['6 msg 33', 1]]);
});

t.test('a batch larger than the window keeps its last whole frames', async (t) => {
  const w = new ResendWindow(10);
  w.record(frames('aaaa', 'bbbb', 'cccc'), 3);
  w.lost();
  const chunks = taken(w)!;
  t.same(chunks.map((c) => [c.frames.toString(), c.count]), [['4 cccc', 1]]);
  t.ok(w.heldBytes <= 10);
});

t.test('a batch larger than the window: nothing older than what it keeps is sent again', async (t) => {
  const w = new ResendWindow(30);
  w.record(frames('msg 11'), 1); // 8 bytes
  // 40 bytes: only the second frame fits (the first starts before the last 30 bytes), and it does
  // not overwrite the older frame. Sent again ahead of it, that one came with the batch's first
  // frame missing in between.
  w.record(frames(`${'x'.repeat(16)}1`, `${'y'.repeat(16)}2`), 2);
  w.lost();
  t.same((taken(w) ?? []).map((c) => [c.frames.toString(), c.count]), [[`17 ${'y'.repeat(16)}2`, 1]]);
  t.equal(w.heldBytes, 20);
});

t.test('a single frame larger than the window is not kept; 0 keeps nothing', async (t) => {
  const w = new ResendWindow(4);
  w.record(frames('too long'), 1);
  t.equal(w.heldBytes, 0);
  w.lost();
  t.equal(taken(w), undefined);
  const off = new ResendWindow(0);
  off.record(frames('a'), 1);
  off.lost();
  t.equal(taken(off), undefined);
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
  t.equal(taken(w, c2), undefined, 'an idle connection (a pool member on standby) that drops causes no resend');
  w.lost(c1);
  t.same(taken(w, c2)!.map((c) => c.frames.toString()), ['1 a']);
  w.record(frames('b'), 1, c2);
  w.lost(c1);
  t.equal(taken(w, c2), undefined, 'c1 carries nothing any more');
  w.lost(c2);
  t.same(taken(w, {})!.map((c) => c.frames.toString()), ['1 a', '1 b'], 'c2 carried the replay and its own');
});

t.test('auto: the tcp_wmem and tcp_rmem maxima, per connection sending at once, capped', async (t) => {
  const MiB = 1024 * 1024;
  const proc = (files: Record<string, string>) => (path: string) => {
    const name = path.split('/').pop()!;
    if (!(name in files)) throw Object.assign(new Error('ENOENT'), { code: 'ENOENT' });
    return files[name];
  };
  const here = kernelBuffers(proc({ tcp_wmem: '4096\t16384\t4194304\n', tcp_rmem: '4096\t131072\t33554432\n' }));
  t.same(here, { send: 4 * MiB, receive: 32 * MiB, from: 'proc' });
  t.equal(autoWindowBytes(1, here), 36 * MiB);
  t.equal(autoWindowBytes(3, here), AUTO_CEILING_BYTES, 'three round-robin members: capped');
  t.same(kernelBuffers(proc({})), { ...FALLBACK_BUFFERS, from: 'fallback' }, 'no /proc (not Linux)');
  t.same(kernelBuffers(proc({ tcp_wmem: 'x', tcp_rmem: '1 2 3' })).from, 'fallback', 'unreadable: the fallback');
  t.equal(autoWindowBytes(1, kernelBuffers(proc({}))), 10 * MiB);
  t.ok(autoWindowBytes(1) > 0, 'this machine');
});

/**
 * Records `batches` random batches of 1 to `most` frames into a window of `cap` bytes; `check` is
 * called after the batches whose index it lists (and after the last) with what a replay gives.
 */
function aroundTheRing(seed: number, cap: number, batches: number, most: number, checkAt: (b: number) => boolean, check: (r: { w: ResendWindow; chunks: Array<{ frames: Buffer; count: number }>; expected: string; count: number; maxFrame: number; b: number }) => void, store: WindowStore = memoryStore) {
  const rand = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % n);
  const w = new ResendWindow(cap, undefined, store);
  const sent: string[] = [];
  let maxFrame = 0;
  for (let b = 0; b < batches; b++) {
    const msgs = Array.from({ length: 1 + rand(most) }, () => `m${sent.length + 1}`.padEnd(1 + rand(40), '.') + '|');
    for (const m of msgs) {
      sent.push(m);
      maxFrame = Math.max(maxFrame, frame(m).length);
    }
    w.record(frames(...msgs), msgs.length);
    if (!checkAt(b) && b !== batches - 1) continue;
    w.lost();
    const chunks = taken(w)!;
    const count = chunks.reduce((n, c) => n + c.count, 0);
    const expected = sent.slice(sent.length - count).map((m) => frame(m).toString()).join('');
    check({ w, chunks, expected, count, maxFrame, b });
  }
}

const replayText = (chunks: Array<{ frames: Buffer }>) => chunks.map((c) => c.frames.toString()).join('');

t.test('around the ring: what is replayed is the newest frames, in order, about maxBytes of them', async (t) => {
  for (const cap of [100, 1000, 4096]) {
    aroundTheRing(7, cap, 300, 5, () => false, ({ w, chunks, expected, count, maxFrame }) => {
      const text = replayText(chunks);
      t.equal(text, expected, `cap ${cap}: the newest ${count} frames, whole and in order`);
      t.equal(Buffer.byteLength(text), w.heldBytes);
      t.ok(w.heldBytes <= cap && w.heldBytes > cap - 2 * maxFrame, `cap ${cap}: holds ${w.heldBytes} bytes, under the cap by less than two frames`);
    });
  }
});

for (const where of ['memory', 'a file'] as const) {
  t.test(`batches of many frames trimmed anywhere: the newest whole frames, in order, with their count (window in ${where})`, async (t) => {
    // A trim finds the first frame to keep from every 16th frame's noted start: batches here have up
    // to 80 frames, so trims land before, on and after the noted ones. Checked now and then mid-way.
    const dir = t.testdir();
    const failures: unknown[] = [];
    for (const cap of [300, 2000, 20000]) {
      const store = where === 'memory' ? memoryStore : fileStore(dir, (err) => failures.push(err));
      aroundTheRing(11, cap, 400, 80, (b) => b % 37 === 36, ({ w, chunks, expected, count, maxFrame, b }) => {
        t.equal(replayText(chunks), expected, `cap ${cap}, batch ${b}: the newest ${count} frames`);
        t.ok(w.heldBytes <= cap && w.heldBytes > cap - 2 * maxFrame, `cap ${cap}, batch ${b}: holds ${w.heldBytes} bytes`);
      }, store);
    }
    t.same(failures, [], 'the file never failed');
  });
}

t.test('a replay copies one batch at a time, as it is read; batches trimmed meanwhile are copied out first, whole', async (t) => {
  const w = new ResendWindow(40);
  w.record(frames('aa 01', 'aa 02'), 2); // 14 bytes
  w.record(frames('bb 03', 'bb 04'), 2); // 28
  w.lost();
  const r = w.takeReplay()!;
  t.equal(r.messages, 4, 'what it sends, counted when taken');
  t.equal(r.next()!.frames.toString(), '5 aa 015 aa 02', 'the first batch');
  // A pool's other member goes on: newer batches overwrite the ring where the second batch is.
  w.record(frames('cc 05', 'cc 06'), 2);
  w.record(frames('dd 07', 'dd 08'), 2);
  w.record(frames('ee 09', 'ee 10'), 2);
  const second = r.next()!;
  t.same([second.frames.toString(), second.count], ['5 bb 035 bb 04', 2], 'the second batch, as it was when the replay was taken');
  t.equal(r.next(), undefined);
  t.equal(w.takeReplay(), undefined, 'nothing else was pending');
});

t.test('a replay whose connection is lost too: the next connection sends what it carried, the first replay stops', async (t) => {
  const [c1, c2, c3] = [{}, {}, {}];
  const w = new ResendWindow(1024);
  w.record(frames('a'), 1, c1);
  w.record(frames('b'), 1, c1);
  w.lost(c1);
  const first = w.takeReplay(c2)!;
  t.equal(first.next()!.frames.toString(), '1 a');
  w.lost(c2);
  t.same(taken(w, c3)!.map((c) => c.frames.toString()), ['1 a', '1 b'], 'both again: the first may have died in the kernel with c2');
  t.equal(first.next(), undefined, 'the replay on the lost connection sends nothing more');
});

t.test('a replayed chunk is not the ring: newer batches overwrite the ring while the socket still holds it', async (t) => {
  for (const where of ['memory', 'a file'] as const) {
    const w = new ResendWindow(30, undefined, where === 'memory' ? memoryStore : fileStore(t.testdir(), () => {}));
    w.record(frames('msg 11'), 1);
    w.record(frames('msg 22'), 1);
    w.lost();
    const r = w.takeReplay()!;
    const first = r.next()!;
    w.record(frames('z'.repeat(20)), 1); // 23 bytes: overwrites both
    t.equal(first.frames.toString(), '6 msg 11', `${where}: the chunk stays as it was until the next one is read`);
    t.same([r.next()!.frames.toString()], ['6 msg 22'], `${where}: the next, copied out before the overwrite`);
    t.equal(r.next(), undefined);
  }
});

t.test('a batch larger than the window while a replay is under way: what the replay has still to send is sent', async (t) => {
  const w = new ResendWindow(30);
  w.record(frames('msg 11'), 1);
  w.record(frames('msg 22'), 1);
  w.lost();
  const r = w.takeReplay()!;
  t.equal(r.next()!.frames.toString(), '6 msg 11');
  // Another member's batch, larger than the whole window: only its last frame is kept.
  w.record(frames(`${'x'.repeat(16)}1`, `${'y'.repeat(16)}2`), 2);
  t.equal(r.next()!.frames.toString(), '6 msg 22', 'the rest of the replay');
  t.equal(r.next(), undefined);
});

t.test('what a lost connection owes is kept in the owed file until a new connection took it all', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'resend-owed');
  const owed = () => (existsSync(path) ? readFileSync(path, 'utf8') : undefined);
  const w = new ResendWindow(1024, undefined, memoryStore, new OwedFile(path, (err) => t.fail(String(err))));
  const sock = {};
  w.record(frames('a', 'b'), 2, sock);
  t.equal(owed(), undefined, 'nothing owed while the connection lives');
  w.lost(sock);
  t.equal(owed(), '1 a1 b', 'lost: its frames are in the file');
  const next = {};
  const replay = w.takeReplay(next)!;
  t.equal(replay.next()?.frames.toString(), '1 a1 b');
  t.equal(owed(), '1 a1 b', 'still owed while the new connection may not have taken the last chunk');
  t.equal(replay.next(), undefined);
  t.equal(owed(), undefined, 'all taken: nothing owed');

  // The next run: what a run left there goes first on its first connection.
  w.record(frames('c'), 1, next);
  w.lost(next);
  const later = new ResendWindow(1024, undefined, memoryStore, new OwedFile(path, (err) => t.fail(String(err))));
  t.equal(replayed(later), '1 a1 b1 c', 'what the earlier run owed, oldest first');
  t.equal(owed(), undefined);
});

t.test('given up at the end of input, the window is not owed to the next run', async (t) => {
  const dir = t.testdir();
  const path = join(dir, 'resend-owed');
  let gaveUp = 0;
  const w = new ResendWindow(1024, () => gaveUp++, memoryStore, new OwedFile(path, (err) => t.fail(String(err))));
  w.record(frames('a'), 1, 'x' as unknown as object);
  w.lost('x' as unknown as object);
  t.ok(existsSync(path));
  for (let i = 0; i < 10 && w.owed(); i++) {
    const conn = {};
    w.takeReplay(conn);
    w.lost(conn);
  }
  // Each replay's connection is lost before it took anything: the frames stay owed, then are given up.
  t.equal(gaveUp, 1);
  t.notOk(existsSync(path), 'no file left for the next run to send again');
});
