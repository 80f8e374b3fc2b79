import t from 'tap';
import type { SyslogMessage } from '../helpers/rfc5424.js';
import { auditfwdSupports, compareFields, expectedMessages, interopLines, readJsonLines, waitForMessages, type ReceivedFields } from '../helpers/interop.js';
import { startRsyslogFields, withSdParser } from '../helpers/interop-rsyslog.js';
import { runAuditfwd } from '../helpers/proc.js';
import { rsyslogMissing } from '../helpers/rsyslog.js';
import { SyslogNg, syslogNgMissing } from '../helpers/syslog-ng.js';

const ARGS = ['--format', 'k8s-audit', '--hostname', 'interop-node-7.cluster.example', '--app-name', 'kube-apiserver', '--log-level', 'error'];
const input = interopLines().join('\n') + '\n';
const supported = auditfwdSupports(/k8s-audit/);
const NOT_YET = 'SKIPPED LOUDLY: this auditfwd has no --format k8s-audit yet (--help does not mention it); runs once the k8s branch is merged';

/**
 * Sends the lines in k8s-audit mode and checks that the server parsed TIMESTAMP (the event's time),
 * MSGID (the stage) and every SD param exactly as sent, both as SD text and through its own SD parser.
 */
async function sendAndCompare(t: Tap.Test, to: string, read: () => ReceivedFields[], serverLog: () => string) {
  const want = await expectedMessages(t, ARGS, input);
  const events = want.filter((m) => m.sd.length > 0);
  t.ok(events.length >= 400, `${events.length} messages carry audit structured data`);
  const userOf = (m: SyslogMessage) => m.sd[0]?.params.find(([k]) => k === 'user')?.[1] ?? '';
  t.ok(events.some((m) => /[^\x00-\x7f]/.test(userOf(m))), 'some SD values are non-ASCII');
  t.ok(events.some((m) => /["\\\]]/.test(userOf(m))), 'some SD values need escaping (" \\ ])');
  const from = Date.now();
  const run = runAuditfwd(t, ['--to', to, ...ARGS], { stdin: input });
  t.equal(await run.exited, 0, `auditfwd exits 0 after delivering: ${run.stderr().slice(-500)}`);
  const got = await waitForMessages(read, want.length, 20_000, serverLog);
  compareFields(t, got, want, { timestampWindow: { from, to: Date.now() }, exactTimestamp: (m) => m.sd.length > 0, sdParsed: true });
}

t.test('--format k8s-audit to rsyslog imtcp (+ mmpstrucdata)', async (t) => {
  if (!supported) return t.skip(NOT_YET);
  const missing = rsyslogMissing({ imtcp: 'rsyslog', mmpstrucdata: 'rsyslog' });
  if (missing) return t.skip(missing);
  const { rs, read } = await startRsyslogFields(t, withSdParser((port) => `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`), ['imtcp']);
  await sendAndCompare(t, `127.0.0.1:${rs.port}`, read, () => rs.log());
});

t.test('--format k8s-audit to syslog-ng syslog()', async (t) => {
  if (!supported) return t.skip(NOT_YET);
  const missing = syslogNgMissing();
  if (missing) return t.skip(missing);
  const ng = await SyslogNg.start(t);
  await sendAndCompare(t, `127.0.0.1:${ng.port}`, () => readJsonLines(ng.outFile), () => ng.log());
});
