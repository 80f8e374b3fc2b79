import t from 'tap';
import { HeapBound, v8Heap, type HeapProbe } from '../../src/ops/heap-bound.js';

/** A heap whose use the test sets, and which records the collections asked for. */
function fakeHeap(): HeapProbe & { bytes: number; afterCollect: number } {
  const h = {
    bytes: 10_000,
    afterCollect: 10_000,
    used: () => h.bytes,
    collect: () => void (h.bytes = h.afterCollect),
  };
  return h;
}

t.test('a full collection once the heap grew by more than the slack, and none before', async (t) => {
  const heap = fakeHeap();
  const bound = new HeapBound(heap, 1000);
  heap.bytes = 10_900;
  t.notOk(bound.check(), 'within the slack: no collection');
  heap.bytes = 11_100;
  heap.afterCollect = 10_200;
  t.ok(bound.check(), 'past the slack: a collection');
  // The slack counts from what the last collection left (10,200), not from the start.
  heap.bytes = 11_150;
  t.notOk(bound.check(), '950 above what the collection left: none');
  heap.bytes = 11_250;
  t.ok(bound.check(), 'past the slack again');
});

t.test("V8's own collections lower the floor: growth counts from the lowest use seen", async (t) => {
  const heap = fakeHeap();
  const bound = new HeapBound(heap, 1000);
  heap.bytes = 9_000; // V8 collected by itself
  t.notOk(bound.check());
  heap.bytes = 10_500; // 1,500 above the floor of 9,000, 500 above the start
  t.ok(bound.check());
});

t.test('the real heap: the collection it asks for frees what is garbage', async (t) => {
  const heap = v8Heap();
  let junk: unknown[] | undefined = Array.from({ length: 200_000 }, (_, i) => ({ i, s: `x${i}` }));
  const full = heap.used();
  t.ok(junk.length > 0);
  junk = undefined;
  heap.collect();
  t.ok(heap.used() < full - 4 * 1024 * 1024, `used ${full} -> ${heap.used()} bytes`);
});

t.test('--heap-slack-bytes: 2 MiB by default, a size, 0 turns the bound off, negative is refused', async (t) => {
  const { resolveConfig } = await import('../../src/config/config.js');
  t.equal(resolveConfig({ to: '-' }).heapSlackBytes, 2 * 1024 * 1024);
  t.equal(resolveConfig({ to: '-', heapSlackBytes: '512KiB' }).heapSlackBytes, 512 * 1024);
  t.equal(resolveConfig({ to: '-', heapSlackBytes: '0' }).heapSlackBytes, 0);
  t.throws(() => resolveConfig({ to: '-', heapSlackBytes: '-1' }), /--heap-slack-bytes: "-1" is negative/);
});
