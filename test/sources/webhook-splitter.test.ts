import t from 'tap';
import fc from 'fast-check';
import { EventSplitter, SplitError } from '../../src/sources/webhook-splitter.js';

const limits = { maxDepth: 20, maxEventBytes: 1 << 20, keepParsedBelowBytes: 1 << 16 };

/** Feeds `body` cut at `cuts` (positions), returns the events' compact JSON, or the refusal. */
function split(body: Buffer, cuts: number[] = [], l = limits): string[] | SplitError {
  const s = new EventSplitter(l);
  let at = 0;
  try {
    for (const c of [...cuts.filter((c) => c > 0 && c < body.length).sort((a, b) => a - b), body.length]) {
      s.write(body.subarray(at, c));
      at = c;
    }
    const r = s.end();
    return Array.from({ length: r.count }, (_, i) => r.line(i).toString());
  } catch (err) {
    if (err instanceof SplitError) return err;
    throw err;
  }
}

const event = fc.record({ kind: fc.constant('Event'), auditID: fc.uuid(), stage: fc.string(), extra: fc.jsonValue({ maxDepth: 5 }) });
const body = fc.oneof(
  fc.array(event, { maxLength: 6 }).map((items) => ({ doc: { kind: 'EventList', apiVersion: 'audit.k8s.io/v1', metadata: {}, items } as unknown, events: items })),
  event.map((e) => ({ doc: e as unknown, events: [e] })),
  fc.array(fc.oneof(event.map((e) => ({ doc: e as unknown, events: [e] })), fc.array(event, { maxLength: 3 }).map((items) => ({ doc: { kind: 'EventList', items } as unknown, events: items }))), { maxLength: 4 }).map((parts) => ({
    doc: parts.map((p) => p.doc) as unknown,
    events: parts.flatMap((p) => p.events),
  })),
);

t.test('any EventList, Event or array of them, compact or pretty, cut anywhere: each event once, in order, as compact JSON', async (t) => {
  fc.assert(
    fc.property(body, fc.boolean(), fc.array(fc.nat(), { maxLength: 8 }), ({ doc, events }, pretty, cuts) => {
      const bytes = Buffer.from(JSON.stringify(doc, null, pretty ? 2 : undefined));
      const got = split(bytes, cuts.map((c) => c % (bytes.length + 1)));
      t.same(got, events.map((e) => JSON.stringify(e)));
      return true;
    }),
    { numRuns: 300 },
  );
});

t.test('random bytes and random JSON: events or a 400/413 refusal, nothing else', async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.uint8Array({ maxLength: 300 }).map((a) => Buffer.from(a)), fc.jsonValue().map((v) => Buffer.from(JSON.stringify(v) ?? 'null'))), (bytes) => {
      const r = split(bytes);
      return Array.isArray(r) || r.status === 400 || r.status === 413;
    }),
    { numRuns: 500 },
  );
});

t.test('refusals name the place, never quote the body', async (t) => {
  const msg = (s: string) => (split(Buffer.from(s)) as SplitError).message;
  t.equal(msg('{"kind":"EventList","items":[{"kind":"Event"},"SECRETISH"]}'), 'the body: items[1] is not an object');
  t.equal(msg('[{"kind":"Event"},[]]'), 'item 1 is not an Event or an EventList');
  t.equal(msg('{"kind":"Pod"}'), 'the body is not an Event or an EventList');
  t.equal(msg('{"kind":"EventList","items":[{"a":SECRETISH}]}'), 'malformed JSON: event 0 is not valid JSON');
  t.equal(msg('{"kind":"EventList","items":[{}],}'), 'malformed JSON: the body is not valid JSON');
  t.equal(msg('{"kind":"EventList","items":[{},]}'), 'malformed JSON: "," before "]"');
  t.equal(msg('{"kind":"Event"} x'), 'malformed JSON: more after the end of the body');
  t.equal(msg('{"kind":"Event"'), 'malformed JSON: the body ends inside a value');
  const deep = split(Buffer.from(`{"kind":"Event","x":${'['.repeat(100_000)}`)) as SplitError;
  t.equal(deep.status, 400);
  t.equal(deep.message, 'nested deeper than 20 levels');
  const big = split(Buffer.from(JSON.stringify({ kind: 'EventList', items: [{ a: 'x'.repeat(3000) }] })), [], { ...limits, maxEventBytes: 1024 }) as SplitError;
  t.same([big.status, big.message], [413, 'event 0 is larger than 1024 bytes']);
});

t.test('onEvent can stop a request at any event (the in-flight budget)', async (t) => {
  const s = new EventSplitter({
    ...limits,
    onEvent: (n) => {
      if (n > 2) throw new Error('budget');
    },
  });
  t.throws(() => s.write(Buffer.from(JSON.stringify({ kind: 'EventList', items: [{}, {}, {}, {}] }))), { message: 'budget' });
});
