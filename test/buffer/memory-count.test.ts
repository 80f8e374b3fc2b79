import t from 'tap';
import { Writable } from 'node:stream';
import pino from 'pino';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { SpillBuffer } from '../../src/buffer/spill/spill-buffer.js';
import { Rfc5424Framer } from '../../src/framing/rfc5424.js';
import { Stats } from '../../src/telemetry/stats.js';

/**
 * --memory-max-bytes counts the memory a batch holds (Batch.memory: its slab's share), not only its
 * frame bytes: a short batch alone in a 1 MiB slab holds the slab.
 */

const KiB = 1024;
const frames = (n: number) => Buffer.from(`${n - String(n).length - 1} `.padEnd(n, 'x'));
const pending = (p: Promise<void>) => Promise.race([p.then(() => false), new Promise<boolean>((r) => setImmediate(() => r(true)))]);

t.test('memory buffer: a batch waits for room by the memory of those before it, not by their bytes', async (t) => {
  const buffer = new MemoryBuffer(1024 * KiB);
  await buffer.push({ frames: frames(100), count: 1, memory: 600 * KiB });
  t.equal(buffer.bytes, 600 * KiB, 'counted by its memory');
  const second = buffer.push({ frames: frames(100), count: 1, memory: 600 * KiB });
  t.ok(await pending(second), '200 bytes of frames, but 1.2 MiB of memory: it waits');
  const first = buffer.take()!;
  buffer.handedOn(first);
  t.notOk(await pending(second), 'in once the first is handed on');
  t.equal(buffer.bytes, 600 * KiB);
  buffer.handedOn(buffer.take()!);
  t.equal(buffer.bytes, 0, 'nothing counted once all is handed on');
  await buffer.push({ frames: frames(300), count: 1 });
  t.equal(buffer.bytes, 300, 'a batch without memory counts its frames');
});

t.test('spill buffer: memory counts what batches hold; the spill, their bytes', async (t) => {
  const dir = t.testdir();
  const spill = await SpillBuffer.open({
    dir,
    maxBytes: 64 * 1024 * KiB,
    memoryMaxBytes: 1024 * KiB,
    fsyncIntervalMs: 3_600_000,
    whenFull: 'block',
    log: pino({ level: 'silent' }, new Writable({ write: (_c, _e, cb) => cb() })),
    stats: new Stats(),
    gapFramer: new Rfc5424Framer({ facility: 1, severity: 4, hostname: 'h', appName: 'auditfwd', maxMessageBytes: 65536 }),
  });
  t.teardown(() => spill.abandon());
  // A sink waits for data: memory may fill to the whole budget.
  const waiting = spill.waitForData();
  await spill.push({ frames: frames(100), count: 1, memory: 600 * KiB });
  await waiting;
  t.equal(spill.memoryBytes, 600 * KiB, 'in memory, counted by its memory');
  t.equal(spill.spilledBytes, 0);
  const first = spill.take()!;
  // The next one does not fit beside it: it goes to the spill, counted there by its bytes.
  await spill.push({ frames: frames(100), count: 1, memory: 600 * KiB });
  t.equal(spill.memoryBytes, 600 * KiB, 'memory: still only the first');
  t.ok(spill.spilledBytes >= 100 && spill.spilledBytes < 600 * KiB, `the spill counts bytes written (${spill.spilledBytes}), not memory`);
  spill.handedOn(first);
  t.equal(spill.memoryBytes, 0, 'handed on: its memory is free');
});
