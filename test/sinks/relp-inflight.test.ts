import t from 'tap';
import { InFlight } from '../../src/sinks/relp-inflight.js';

t.test('messages in flight by TXNR: each taken once, with its index', async (t) => {
  const f = new InFlight<string>(4);
  f.set(1, 'a', 0);
  f.set(2, 'a', 1);
  f.set(3, 'b', 0);
  t.equal(f.size, 3);
  t.equal(f.take(2), 'a');
  t.equal(f.lastIndex, 1);
  t.equal(f.take(2), undefined, 'answered twice: unknown the second time');
  t.equal(f.take(99), undefined, 'never sent');
  t.equal(f.take(3), 'b');
  t.equal(f.lastIndex, 0);
  t.equal(f.size, 1);
});

t.test('an old message still unanswered holds its slot: the TXNR that would share it waits', async (t) => {
  const f = new InFlight<string>(4); // 16 slots
  f.set(1, 'old', 0);
  for (let txnr = 2; txnr < 17; txnr++) {
    t.ok(f.hasRoomFor(txnr));
    f.set(txnr, 'x', txnr);
    f.take(txnr);
  }
  t.notOk(f.hasRoomFor(17), '17 shares the slot of 1');
  t.equal(f.take(17), undefined, 'and is not mistaken for it');
  t.equal(f.take(1), 'old');
  t.ok(f.hasRoomFor(17));
});
