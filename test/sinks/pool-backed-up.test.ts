import t from 'tap';
import pino from 'pino';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import type { Batch } from '../../src/batch.js';
import { Backoff } from '../../src/sinks/backoff.js';
import { PoolSink } from '../../src/sinks/pool.js';
import { TcpSink } from '../../src/sinks/tcp.js';
import { Stats, type SinkStats } from '../../src/telemetry/stats.js';
import { TestDrain } from '../helpers/drain.js';
import { untilTrue } from '../helpers/ops.js';

const PAD = 'x'.repeat(64 * 1024);
const TOTAL = 160; // 10 MiB: more than a drain that stopped reading takes into both kernels here

t.test('round-robin passes over a member whose socket is backed up: a drain that stops reading does not stop the others', async (t) => {
  const slow = await TestDrain.start();
  const fast = await TestDrain.start();
  t.teardown(() => Promise.all([slow.close(), fast.close()]));
  slow.pause();
  const stats = new Stats();
  const log = pino({ level: 'silent' });
  const pool = new PoolSink(
    [slow, fast].map((d) => ({ name: d.address, make: (s: SinkStats) => new TcpSink({ host: '127.0.0.1', port: d.port, stats: s, log, framing: 'octet-counting', backoff: new Backoff(10, 40, 10) }) })),
    'round-robin',
    stats,
    log,
  );
  const buffer = new MemoryBuffer(64 * 1024 * 1024);
  const done = pool.run(buffer);
  t.teardown(async () => {
    pool.abort();
    await done;
  });
  await untilTrue(() => [...stats.members.values()].every((m) => m.drainConnected), () => 'not connected', 5000);
  for (let i = 0; i < TOTAL; i++) {
    const m = `m${i} ${PAD}`;
    await buffer.push({ frames: Buffer.from(`${m.length} ${m}`), count: 1, onHandedOn: () => {} } as Batch);
  }
  const slowStats = stats.members.get(slow.address)!;
  // The slow member holds what its kernels took plus the one batch it waits to write; the fast one gets the rest.
  await untilTrue(
    () => fast.messages.length + slowStats.messagesSent + 1 >= TOTAL,
    () => `the fast drain got ${fast.messages.length}, the slow member wrote ${slowStats.messagesSent} of ${TOTAL}`,
    10_000,
  );
  t.ok(slowStats.messagesSent < TOTAL / 2, `the slow member took less than its turns' share (${slowStats.messagesSent})`);
  slow.resume();
  buffer.close();
  await done;
  await untilTrue(() => slow.messages.length + fast.messages.length === TOTAL, () => `received ${slow.messages.length} + ${fast.messages.length}`, 10_000);
  const seen = [...slow.messages, ...fast.messages].map((m) => Number(/^m(\d+) /.exec(m.toString())![1]));
  t.same([...new Set(seen)].sort((a, b) => a - b), Array.from({ length: TOTAL }, (_, i) => i), 'every message once');
});
