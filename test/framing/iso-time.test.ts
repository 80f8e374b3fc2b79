import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isoTime } from '../../src/framing/iso-time.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';
import { runAuditfwd } from '../helpers/proc.js';
import { k8sAuditLines } from '../helpers/fixtures.js';

const MAX = 8.64e15;

t.test('isoTime writes what Date#toISOString writes', async (t) => {
  const edges = [
    0, -0, 1, -1, 0.5, -0.5, -1.5, 999.9, -999.9, MAX, -MAX,
    Date.UTC(2000, 1, 29), Date.UTC(1900, 1, 28, 23, 59, 59, 999), Date.UTC(2100, 2, 1), // leap rules: 400, 100
    Date.UTC(0, 0, 1) - 1, // year -1: six digits and a sign
    Date.UTC(9999, 11, 31, 23, 59, 59, 999), Date.UTC(9999, 11, 31, 23, 59, 59, 999) + 1, // 9999, then +010000
  ];
  for (const ms of edges) t.equal(isoTime(ms), new Date(ms).toISOString(), `at ${ms}`);
  fc.assert(
    fc.property(fc.oneof(fc.integer({ min: -MAX, max: MAX }), fc.double({ min: -MAX, max: MAX, noNaN: true }), fc.integer({ min: -4e12, max: 4e12 })), (ms) =>
      isoTime(ms) === new Date(ms).toISOString(),
    ),
    { numRuns: 20_000 },
  );
  for (const bad of [NaN, Infinity, -Infinity, MAX + 1, -MAX - 1]) t.throws(() => isoTime(bad), RangeError, `${bad}: RangeError, as toISOString`);
});

t.test('the real process never breaks a Date into fields (that reads ICU time-zone data into RSS)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'auditfwd-no-date-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  // Loaded into node before auditfwd: every Date method that computes fields counts, and at exit
  // the names called are written out. Date.now() and getTime() need no fields and are left alone.
  const probe = join(dir, 'date-probe.cjs');
  writeFileSync(
    probe,
    `const called = new Set();
for (const name of Object.getOwnPropertyNames(Date.prototype)) {
  if (name === 'constructor' || name === 'getTime' || name === 'valueOf') continue;
  const orig = Date.prototype[name];
  if (typeof orig !== 'function') continue;
  Date.prototype[name] = function (...args) { called.add(name); return orig.apply(this, args); };
}
process.on('exit', () => process.stderr.write('date methods called: [' + [...called].join(',') + ']\\n'));
`,
  );
  const [event] = k8sAuditLines();
  // An offset time takes the general path of normaliseTimestamp, which converts it to UTC.
  const offset = event.replace(/"stageTimestamp":"[^"]*"/, '"stageTimestamp":"2026-12-02T02:30:00.5+02:00"');
  t.not(offset, event, 'the fixture has a stageTimestamp to replace');
  const before = Date.now();
  for (const format of ['raw', 'k8s-audit']) {
    const run = runAuditfwd(t, ['--to', '-', '--format', format, '--log-level', 'info'], { stdin: `plain line\n${offset}\n`, nodeOptions: `--require ${probe}` });
    t.equal(await run.exited, 0, `${format}: exits 0`, { stderr: run.stderr() });
    t.match(run.stderr(), /date methods called: \[\]/, `${format}: no Date method that computes fields was called`);
    t.match(run.stderr(), /"time":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z"/, `${format}: the log still has ISO times`);
    const { frames } = splitOctetCounted(run.stdout());
    const [plain, audit] = frames.map((f) => parseRfc5424(f));
    const received = Date.parse(plain.timestamp!);
    // Seconds of slack: the child's clock keeps within 2 ms of its Date.now(), this one is Date.now().
    t.ok(Math.abs(received - before) < 10_000, `${format}: a plain line has the time it was read (${plain.timestamp})`);
    t.equal(audit.timestamp, format === 'raw' ? plain.timestamp : '2026-12-02T00:30:00.5Z', `${format}: the event's time, in UTC in k8s-audit`);
  }
});
