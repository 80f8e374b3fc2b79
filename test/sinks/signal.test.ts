import t from 'tap';
import { Latch, Signal } from '../../src/sinks/signal.js';

const never = () => new Promise<never>(() => {});

t.test('Latch: a race settles as the short promise when it comes first, and takes its listener off', async (t) => {
  const latch = new Latch(never());
  const got: Array<number | string> = [];
  for (let i = 0; i < 1000; i++) got.push(await latch.race(Promise.resolve(i), 'latched'));
  t.same(got, Array.from({ length: 1000 }, (_, i) => i), "each race settled with the short promise's value");
  t.equal(latch.waiting, 0, 'nothing left on the latch after 1000 races');
  await t.rejects(latch.race(Promise.reject(new Error('short')), 'latched'), /short/);
  t.equal(latch.waiting, 0);
});

t.test('Latch: races waiting when it resolves get its value; later ones get it at once', async (t) => {
  let fire!: () => void;
  const latch = new Latch(new Promise<void>((resolve) => (fire = resolve)));
  const waiting = [latch.race(never(), 'a'), latch.race(never(), 'b')];
  t.equal(latch.waiting, 2);
  fire();
  t.same(await Promise.all(waiting), ['a', 'b']);
  t.equal(latch.waiting, 0);
  t.equal(await latch.race(never(), 'c'), 'c');
});

t.test('Latch: its rejection reaches every race, never the process', async (t) => {
  let fail!: (err: Error) => void;
  const latch = new Latch(new Promise<void>((_resolve, reject) => (fail = reject)));
  const waiting = latch.race(never(), 'x');
  fail(new Error('stream failed'));
  await t.rejects(waiting, /stream failed/);
  await t.rejects(latch.race(Promise.resolve(1), 'x'), /stream failed/);
});

t.test('Promise.race against a long-lived promise keeps a reaction per call; the latch keeps one in all', async (t) => {
  // What the latch is for: count the reactions added to the long-lived promise.
  let thens = 0;
  const longLived = never();
  const counted = { then: (a: () => void, b: () => void) => (thens++, longLived.then(a, b)) } as unknown as Promise<never>;
  for (let i = 0; i < 100; i++) await Promise.race([Promise.resolve(i), counted]);
  t.equal(thens, 100, 'Promise.race: one reaction per call, kept until the long-lived promise settles');
  thens = 0;
  const latch = new Latch(counted);
  for (let i = 0; i < 100; i++) await latch.race(Promise.resolve(i), 'latched');
  t.equal(thens, 1, 'the latch: one');
});

t.test('Signal: waitOr leaves no waiter behind when the other promise comes first; a poke ends the rest', async (t) => {
  const signal = new Signal();
  for (let i = 0; i < 1000; i++) await signal.waitOr(Promise.resolve());
  t.equal(signal.waiting, 0, 'nothing left after 1000 waits ended by their promise');
  const a = signal.waitOr(never());
  const b = signal.wait();
  t.equal(signal.waiting, 2);
  signal.poke();
  await Promise.all([a, b]);
  t.equal(signal.waiting, 0);
  await t.rejects(signal.waitOr(Promise.reject(new Error('gone'))), /gone/);
  t.equal(signal.waiting, 0);
});
