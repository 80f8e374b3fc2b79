import t from 'tap';
import { Writable } from 'node:stream';
import { once } from 'node:events';
import { connect, createServer, type AddressInfo, type Socket } from 'node:net';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { writeBatches } from '../../src/sinks/write-loop.js';
import { Stats } from '../../src/telemetry/stats.js';

/** A stream that takes each write a tick later, recording what it got and when. */
function recorder(events: string[]): Writable {
  return new Writable({
    highWaterMark: 4,
    write(chunk: Buffer, _enc, cb) {
      setImmediate(() => {
        events.push(`wrote ${chunk.toString()}`);
        cb();
      });
    },
  });
}

t.test('a marked batch goes in pieces, one at a time; each piece commits once everything before it was handed on', async (t) => {
  const events: string[] = [];
  const buffer = new MemoryBuffer(1 << 20);
  await buffer.push({ frames: Buffer.from('1 a'), count: 1, onHandedOn: () => events.push('handed on first') });
  await buffer.push({
    frames: Buffer.from('1 b1 c1 d'),
    count: 3,
    onHandedOn: () => events.push('handed on second'),
    marks: { bytes: [3, 6], progress: (k) => events.push(`progress ${k}`) },
  });
  buffer.close();
  await writeBatches(recorder(events), buffer, 'octet', new Stats(), new Promise(() => {}), () => false);
  t.same(events, ['wrote 1 a', 'handed on first', 'wrote 1 b', 'progress 0', 'wrote 1 c', 'progress 1', 'wrote 1 d', 'handed on second']);
});

t.test('LF framing ignores marks (its frames have other boundaries); a failed stream leaves the batch in flight', async (t) => {
  const events: string[] = [];
  const buffer = new MemoryBuffer(1 << 20);
  await buffer.push({ frames: Buffer.from('1 b1 c'), count: 2, marks: { bytes: [3], progress: (k) => events.push(`progress ${k}`) } });
  buffer.close();
  await writeBatches(recorder(events), buffer, 'lf', new Stats(), new Promise(() => {}), () => false);
  t.same(events, ['wrote b\nc\n']);

  const failing = new MemoryBuffer(1 << 20);
  await failing.push({ frames: Buffer.from('1 b1 c'), count: 2, marks: { bytes: [3], progress: (k) => events.push(`progress ${k}`) } });
  const out = new Writable({ write: (_c, _e, cb) => cb(new Error('EPIPE')) });
  out.on('error', () => {});
  let closed = false;
  const close = new Promise<void>((resolve) => out.on('close', () => resolve()));
  void close.then(() => (closed = true));
  const inflight: unknown[] = [];
  // It returns once the stream is seen closed, as a socket's pump expects, not at the failed write.
  await writeBatches(out, failing, 'octet', new Stats(), close, () => closed, { inflight: inflight as never[] });
  t.ok(closed, 'returned once the stream closed');
  t.equal(inflight.length, 1, 'the batch is left for the caller to requeue');
  t.notOk(events.includes('progress 0'), 'no piece committed');
});

t.test('a batch the kernel takes only part of: the marks within that part commit at once, the rest at its callback', async (t) => {
  const server = createServer((s) => s.pause());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const accepted = once(server, 'connection');
  const sock = connect((server.address() as AddressInfo).port, '127.0.0.1');
  await once(sock, 'connect');
  const [peer] = (await accepted) as [Socket];
  t.teardown(() => {
    sock.destroy();
    peer.destroy();
    server.close();
  });
  const buffer = new MemoryBuffer(64 << 20);
  // A small batch first: taken whole, so the socket is not backed up when the big one goes (whole).
  await buffer.push({ frames: Buffer.from('1 a'), count: 1 });
  const size = 24 << 20;
  const step = 256 << 10;
  const bytes = Array.from({ length: size / step - 1 }, (_, i) => (i + 1) * step);
  const progressed: number[] = [];
  let handedOn = false;
  await buffer.push({ frames: Buffer.alloc(size, 0x31), count: 1, onHandedOn: () => (handedOn = true), marks: { bytes, progress: (k) => progressed.push(k) } });
  buffer.close();
  const loop = writeBatches(sock, buffer, 'octet', new Stats(), new Promise(() => {}), () => false, { careful: () => false });
  // The write of the big batch returned with part of it left in libuv's queue.
  while (sock.writableLength === 0) await new Promise((r) => setImmediate(r));
  const left = (sock as unknown as { _handle: { writeQueueSize: number } })._handle.writeQueueSize;
  t.ok(left > 0, 'the kernel did not take the whole batch');
  t.notOk(handedOn, 'not handed on yet');
  t.ok(progressed.length > 0, `${progressed.length} marks committed within the ${size - left} bytes taken`);
  t.same(progressed, progressed.map((_, i) => i), 'in order, from the first');
  t.ok(bytes[progressed.length - 1] <= size - left, 'none past what the kernel took');
  t.ok(progressed.length === bytes.length || bytes[progressed.length] > size - left, 'every mark within it');
  peer.resume();
  await loop;
  t.ok(handedOn, 'handed on once written');
});

t.test('while careful (the first seconds of a process), a batch the kernel would take whole goes in pieces too', async (t) => {
  // Takes every write at once, as a socket with room does.
  const taker = (events: string[]) => new Writable({ highWaterMark: 1 << 20, write: (c: Buffer, _e, cb) => (events.push(`wrote ${c.toString()}`), cb()) });
  const run = async (careful: boolean) => {
    const events: string[] = [];
    const buffer = new MemoryBuffer(1 << 20);
    // A first batch taken whole: the stream is not backed up when the marked one goes.
    await buffer.push({ frames: Buffer.from('1 a'), count: 1 });
    await buffer.push({ frames: Buffer.from('1 b1 c1 d'), count: 3, onHandedOn: () => events.push('handed on'), marks: { bytes: [3, 6], progress: (k) => events.push(`progress ${k}`) } });
    buffer.close();
    await writeBatches(taker(events), buffer, 'octet', new Stats(), new Promise(() => {}), () => false, { careful: () => careful });
    return events;
  };
  t.same(await run(true), ['wrote 1 a', 'wrote 1 b', 'progress 0', 'wrote 1 c', 'progress 1', 'wrote 1 d', 'handed on'], 'careful: in pieces, each committed as taken');
  t.same(await run(false), ['wrote 1 a', 'wrote 1 b1 c1 d', 'handed on'], 'later: whole');
});

t.test('waits on the stop leave nothing behind: one reaction on it for the whole loop, however many batches wait', async (t) => {
  // A follower's loop waits for data after almost every batch, for as long as its connection lives:
  // each Promise.race against the stop kept a reaction on it (about 300 bytes each: 0.8 MB of heap per GB forwarded).
  let thens = 0;
  const never = new Promise<never>(() => {});
  const stop = {
    then: (a: () => void, b: () => void) => (thens++, never.then(a, b)),
    catch: (b: () => void) => (thens++, never.catch(b)),
  } as unknown as Promise<never>;
  const buffer = new MemoryBuffer(1 << 20);
  const got: string[] = [];
  const out = new Writable({
    write(chunk: Buffer, _enc, cb) {
      got.push(chunk.toString());
      cb();
    },
  });
  const done = writeBatches(out, buffer, 'octet', new Stats(), stop, () => false);
  for (let i = 0; i < 200; i++) {
    const handed = new Promise<void>((resolve) => void buffer.push({ frames: Buffer.from(`1 ${i % 10}`), count: 1, onHandedOn: resolve }));
    await handed; // the loop then waits for the next batch
  }
  buffer.close();
  await done;
  t.equal(got.length, 200, 'every batch written');
  t.ok(thens <= 2, `the stop was subscribed to ${thens} times for 200 waits`);
});
