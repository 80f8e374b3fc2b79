import t from 'tap';
import fc from 'fast-check';
import { FrameWriter, pooledSlab, returnSlab, SLAB_BYTES, type TakenFrames } from '../../src/framing/frame-writer.js';

function fill(n: number, seed: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (seed + i * 31) & 0xff;
  return b;
}

t.test('a batch keeps its bytes until released, however many batches come after it (property)', async (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.record({ size: fc.integer({ min: 1, max: Math.floor(SLAB_BYTES / 3) }), release: fc.boolean() }), { minLength: 1, maxLength: 40 }),
      (plan) => {
        const out = new FrameWriter();
        const held: Array<{ taken: TakenFrames; want: Buffer }> = [];
        plan.forEach(({ size, release }, i) => {
          const want = fill(size, i);
          out.bytes(want);
          const taken = out.takeBatch();
          // Released in the order they were taken, like the buffer hands batches on.
          if (release && held.length > 0) held.shift()!.taken.release();
          held.push({ taken, want });
        });
        for (const h of held) if (!h.taken.frames.equals(h.want)) return false;
        for (const h of held) h.taken.release();
        return true;
      },
    ),
    { numRuns: 60 },
  );
  t.pass('every unreleased batch intact');
});

t.test('a batch larger than a slab is written whole', async (t) => {
  const out = new FrameWriter();
  out.bytes(fill(100, 1));
  const big = fill(SLAB_BYTES + 12345, 2);
  out.bytes(big);
  const { frames, release } = out.takeBatch();
  t.equal(frames.length, 100 + big.length);
  t.ok(frames.subarray(100).equals(big), 'content kept across the move to a larger slab');
  release();
  release(); // twice is harmless
  out.ascii('<14>1 ');
  out.decimal(0);
  out.byte(0x20);
  out.decimal(1234567);
  t.equal(out.takeBatch().frames.toString('latin1'), '<14>1 0 1234567');
});

t.test('an empty batch has no frames and a release that does nothing', async (t) => {
  const out = new FrameWriter();
  const { frames, release } = out.takeBatch();
  t.equal(frames.length, 0);
  release();
  out.utf8('é');
  t.same([...out.take()], [0xc3, 0xa9]);
});

t.test('released slabs are reused instead of allocating more', async (t) => {
  const out = new FrameWriter();
  const chunk = fill(SLAB_BYTES / 4, 3);
  const seen = new Set<ArrayBuffer>();
  for (let i = 0; i < 64; i++) {
    out.bytes(chunk);
    const { frames, release } = out.takeBatch();
    seen.add(frames.buffer as ArrayBuffer);
    release();
  }
  // 64 batches of a quarter slab would need 16+ slabs without reuse.
  t.ok(seen.size <= 3, `${seen.size} slabs used`);
});

t.test('what batches count as memory is what their slabs hold, but at most an eighth of each, and at most twice their frames (property)', async (t) => {
  fc.assert(
    fc.property(fc.array(fc.integer({ min: 1, max: Math.floor(SLAB_BYTES / 2) }), { minLength: 1, maxLength: 40 }), (sizes) => {
      const out = new FrameWriter();
      const held: TakenFrames[] = [];
      let counted = 0;
      for (const [i, size] of sizes.entries()) {
        out.bytes(fill(size, i));
        const taken = out.takeBatch();
        if (taken.memory < taken.frames.length || taken.memory > 2 * taken.frames.length) return false;
        counted += taken.memory;
        held.push(taken);
      }
      // Nothing released: every slab a batch is in is held whole, but the one still being written,
      // held as far as it was written (a slab a batch moved out of before any other was taken from it is free).
      const slabs = [...new Set(held.map((h) => h.frames.buffer as ArrayBuffer))];
      const current = held[held.length - 1];
      // Whether the last slab was given up: a byte more goes elsewhere.
      out.byte(0);
      const probe = out.takeBatch();
      const last = probe.frames.buffer === current.frames.buffer ? current.frames.byteOffset + current.frames.length : SLAB_BYTES;
      const holding = (slabs.length - 1) * SLAB_BYTES + last;
      for (const h of [...held, probe]) h.release();
      return counted <= holding && counted >= holding - slabs.length * (SLAB_BYTES / 8);
    }),
    { numRuns: 200 },
  );
  t.pass('slab memory counted, short by at most an eighth of a slab each');
});

t.test('a slab given up is replaced at the next write, not when the batch is taken', async (t) => {
  // The batch just taken may wait for room in the memory budget: a slab taken at once is held
  // through that wait for nothing.
  const out = new FrameWriter();
  const spares: Buffer[] = [];
  for (let i = 0; i < 16; i++) spares.push(pooledSlab()); // the pool is empty now
  const allocUnsafeSlow = Buffer.allocUnsafeSlow;
  let taken = 0;
  Buffer.allocUnsafeSlow = (n: number) => {
    taken++;
    return allocUnsafeSlow(n);
  };
  try {
    out.bytes(fill(540_000, 7));
    const first = out.takeBatch();
    t.equal(taken, 0, 'no slab taken with the batch that filled the last one');
    out.byte(0x31);
    t.equal(taken, 1, 'the next byte takes one');
    const next = out.takeBatch();
    t.not(next.frames.buffer, first.frames.buffer);
    t.same([...next.frames], [0x31]);
    first.release();
    next.release();
  } finally {
    Buffer.allocUnsafeSlow = allocUnsafeSlow;
    for (const s of spares) returnSlab(s);
  }
});

t.test('a 512 KiB read\'s frames alone in a slab count the whole slab', async (t) => {
  const out = new FrameWriter();
  out.bytes(fill(540_000, 4));
  const first = out.takeBatch();
  t.equal(first.memory, SLAB_BYTES, 'no room left for a batch like it: the slab is its');
  out.bytes(fill(1000, 5));
  const next = out.takeBatch();
  t.not(next.frames.buffer, first.frames.buffer, 'the next batch went to another slab');
  t.equal(next.memory, 1000, 'a small batch in a slab with room counts its bytes');
  // Small batches up to the end of a slab: the one that ends it counts at most twice its bytes.
  let ending = next;
  for (;;) {
    out.bytes(fill(9000, 6));
    const taken = out.takeBatch();
    if (taken.frames.buffer !== next.frames.buffer) {
      taken.release();
      break;
    }
    ending.release();
    ending = taken;
  }
  t.equal(ending.memory, 2 * 9000, 'a small batch that ended a slab counts twice its bytes, not the slab\'s unused end');
  ending.release();
  first.release();
  next.release();
});
