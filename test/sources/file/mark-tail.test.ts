import t from 'tap';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { MemoryBuffer } from '../../../src/buffer/memory.js';
import { FileTailer } from '../../../src/sources/file/tailer.js';
import { CheckpointStore } from '../../../src/state/checkpoints.js';
import { fingerprintOf } from '../../../src/state/file-identity.js';
import { Stats } from '../../../src/telemetry/stats.js';
import { BareEncoder, RecordingLog } from '../../helpers/tail-harness.js';

/**
 * A commit at a mark (a position inside a batch, committed as a sink writing the batch in pieces has
 * handed each on) keeps the hash of the bytes before ITS position, as the batch's own commit does:
 * a .gz of the file is matched by it after a kill -9 that left that commit as the last one.
 */
t.test("a mark's commit carries the tail of its own position and the file's size", async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  // Lines that all differ: the 32 bytes before any two line ends differ too.
  writeFileSync(path, Array.from({ length: 12_000 }, (_, i) => `line ${i} ${'y'.repeat(i % 50)}\n`).join(''));
  const bytes = readFileSync(path);
  const store = await CheckpointStore.open(join(dir, 'state'), new RecordingLog().logger);
  // Closed at the end (a second close is a no-op): also when an assertion throws first.
  t.teardown(() => store.close());
  const buffer = new MemoryBuffer(4 * 1024 * 1024);
  const tailer = new FileTailer(path, { encoder: new BareEncoder(), buffer, stats: new Stats(), checkpoints: store, log: new RecordingLog().logger, startAt: 'beginning', once: true, pollMs: 20, maxLineBytes: 64 * 1024, rotateWaitMs: 30 });
  const seen: Array<{ offset: number; size?: number; tail?: string }> = [];
  const consumer = (async () => {
    for (;;) {
      await buffer.waitForData();
      let b;
      while ((b = buffer.take())) {
        for (let k = 0; k < (b.marks?.bytes.length ?? 0); k++) {
          buffer.progress(b, k);
          const c = store.all()[0];
          seen.push({ offset: c.offset, size: c.size, tail: c.tail });
        }
        buffer.handedOn(b);
      }
      if (buffer.finished) return;
    }
  })();
  await tailer.run();
  buffer.close();
  await consumer;
  await store.close();
  t.ok(seen.length >= 2, `marks committed (${seen.length})`);
  for (const s of seen) {
    t.equal(s.tail, fingerprintOf(bytes.subarray(s.offset - 32, s.offset)), `tail at ${s.offset}`);
    t.ok(s.size !== undefined && s.size >= s.offset, 'size at least the offset');
    t.equal(bytes[s.offset - 1], 0x0a, 'at a line end');
  }
  t.equal(store.all()[0].offset, bytes.length, 'the batch commits its end');
});
