import t from 'tap';
import { Deduper } from '../../src/transforms/dedupe.js';

t.test('an (auditID, stage) pair is forwarded once', async (t) => {
  const d = new Deduper(10, 60_000, () => 0);
  t.notOk(d.isDuplicate('a', 'ResponseComplete'));
  t.ok(d.isDuplicate('a', 'ResponseComplete'));
  t.notOk(d.isDuplicate('a', 'ResponseStarted'), 'another stage of the same request is not a duplicate');
  t.notOk(d.isDuplicate('b', 'ResponseComplete'));
  t.notOk(d.isDuplicate('a\u0000Resp', 'onseComplete'), 'keys do not run together');
});

t.test('the window by time: a pair older than the window is forgotten', async (t) => {
  let now = 1_000;
  const d = new Deduper(10, 5_000, () => now);
  t.notOk(d.isDuplicate('a', 's'));
  now += 4_999;
  t.ok(d.isDuplicate('a', 's'), 'inside the window');
  now += 1;
  t.notOk(d.isDuplicate('a', 's'), 'at the window: forgotten, forwarded again');
  t.equal(d.size, 1, 'and remembered afresh');
  now += 10_000;
  t.notOk(d.isDuplicate('b', 's'));
  t.equal(d.size, 1, 'expired entries are removed, not only ignored');
});

t.test('the window by count: the oldest pair is forgotten first', async (t) => {
  const d = new Deduper(3, 60_000, () => 0);
  for (const id of ['1', '2', '3']) t.notOk(d.isDuplicate(id, 's'));
  t.notOk(d.isDuplicate('4', 's'));
  t.equal(d.size, 3, 'never more than maxEntries');
  t.ok(d.isDuplicate('2', 's'));
  t.ok(d.isDuplicate('4', 's'));
  t.notOk(d.isDuplicate('1', 's'), 'the oldest was evicted');
});
