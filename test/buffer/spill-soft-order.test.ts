import t from 'tap';
import { InOrder } from '../../src/buffer/spill/order.js';

/** Three tickets recording what runs: `run` as "rN", `onSoft` as "sN". */
function three() {
  const events: string[] = [];
  const order = new InOrder();
  const ts = [0, 1, 2].map((n) =>
    order.add(
      () => events.push(`r${n}`),
      () => events.push(`s${n}`),
    ),
  );
  return { events, order, ts };
}

t.test('a soft ticket behind one neither done nor soft runs nothing; once it is, both soft callbacks run in order', async (t) => {
  const { events, order, ts } = three();
  order.soften(ts[1]);
  t.same(events, [], 'ticket 0 is still in memory: no position past it');
  order.soften(ts[0]);
  t.same(events, ['s0', 's1'], 'both soft, in order');
  order.complete(ts[0]);
  order.complete(ts[1]);
  t.same(events, ['s0', 's1', 'r0', 'r1'], 'the durable callbacks still run, in order');
  order.complete(ts[2]);
  t.same(events, ['s0', 's1', 'r0', 'r1', 'r2'], 'a ticket done at the front needs no soft callback');
});

t.test('done and soft mixed: a done ticket behind a soft one gets its soft callback, its run waits for the front', async (t) => {
  const { events, order, ts } = three();
  order.soften(ts[0]);
  order.complete(ts[1]);
  t.same(events, ['s0', 's1'], 'ticket 1 was handed on, ticket 0 only written: both hold for this boot');
  order.soften(ts[1]);
  t.same(events, ['s0', 's1'], 'softening a done ticket does nothing');
  order.complete(ts[0]);
  t.same(events, ['s0', 's1', 'r0', 'r1'], 'durable in order once the front is');
  order.soften(ts[2]);
  order.soften(ts[2]);
  t.same(events, ['s0', 's1', 'r0', 'r1', 's2'], 'each soft callback runs once');
  order.complete(ts[2]);
  order.complete(ts[2]);
  t.same(events, ['s0', 's1', 'r0', 'r1', 's2', 'r2'], 'each run once');
});

t.test('the soft frontier stops at the first ticket neither done nor soft, and goes on from there', async (t) => {
  const { events, order, ts } = three();
  order.soften(ts[0]);
  order.soften(ts[2]);
  t.same(events, ['s0'], 'ticket 2 waits for ticket 1');
  order.complete(ts[0]);
  t.same(events, ['s0', 'r0']);
  order.soften(ts[1]);
  t.same(events, ['s0', 'r0', 's1', 's2']);
  // A ticket without a soft callback (a batch from a source that records no soft position) is passed over.
  const plain = order.add(() => events.push('r3'));
  const after = order.add(
    () => events.push('r4'),
    () => events.push('s4'),
  );
  order.soften(plain);
  order.soften(after);
  t.same(events, ['s0', 'r0', 's1', 's2', 's4']);
});
