import t from 'tap';
import { compareFields, expectedMessages, interopLines, readJsonLines, waitForMessages } from '../helpers/interop.js';
import { runAuditfwd } from '../helpers/proc.js';
import { SyslogNg, syslogNgMissing } from '../helpers/syslog-ng.js';

const HEADER_ARGS = ['--hostname', 'interop-node-7.cluster.example', '--app-name', 'kube-apiserver', '--facility', 'local3', '--severity', 'notice'];

t.test('syslog-ng 3.38 syslog() source: RFC 5424 over TCP, octet counting', async (t) => {
  const missing = syslogNgMissing();
  if (missing) return t.skip(missing);
  const input = interopLines().join('\n') + '\n';
  const want = await expectedMessages(t, HEADER_ARGS, input);
  t.ok(want.some((m) => m.msg.length > 120_000), 'the input has long lines');
  const ng = await SyslogNg.start(t);
  const from = Date.now();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${ng.port}`, ...HEADER_ARGS], { stdin: input });
  t.equal(await run.exited, 0, `auditfwd exits 0 after delivering: ${run.stderr().slice(-500)}`);
  const to = Date.now();
  const got = await waitForMessages(() => readJsonLines(ng.outFile), want.length, 20_000, () => ng.log());
  compareFields(t, got, want, { timestampWindow: { from, to } });
});

t.test('a stock syslog-ng (log-msg-size 64 KiB) with --max-message-bytes 64KiB: every message arrives', async (t) => {
  const missing = syslogNgMissing();
  if (missing) return t.skip(missing);
  // A stock syslog-ng closes the connection on a frame over log-msg-size() (65,536 bytes): that
  // message and whatever followed it on the connection are lost, and plain TCP cannot tell
  // auditfwd. With --max-message-bytes at the server's limit, long lines arrive truncated instead.
  const args = [...HEADER_ARGS, '--max-message-bytes', '64KiB'];
  const input = interopLines(100).join('\n') + '\n';
  const want = await expectedMessages(t, args, input);
  t.ok(want.some((m) => m.msg.includes('[truncated by auditfwd: ')), 'the long lines are cut at 64 KiB');
  const ng = await SyslogNg.start(t, { maxMessageSize: 'stock' });
  const from = Date.now();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${ng.port}`, ...args], { stdin: input });
  t.equal(await run.exited, 0, `auditfwd exits 0 after delivering: ${run.stderr().slice(-500)}`);
  const to = Date.now();
  const got = await waitForMessages(() => readJsonLines(ng.outFile), want.length, 20_000, () => ng.log());
  compareFields(t, got, want, { timestampWindow: { from, to } });
});
