import t from 'tap';
import { join } from 'node:path';
import { appendFileSync, writeFileSync } from 'node:fs';
import { TestDrain } from '../helpers/drain.js';
import { post, webhookPort } from '../helpers/http.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';
import { k8sAuditLines } from '../helpers/shared-data.js';

async function usageError(t: Tap.Test, args: string[], re: RegExp) {
  const run = runAuditfwd(t, args);
  t.equal(await run.exited, 2, `exit 2 for ${args.join(' ')}`);
  const lines = run.stderr().trimEnd().split('\n');
  t.equal(lines.length, 1, 'one line');
  t.match(lines[0], re);
}

t.test('bad k8s settings exit 2 with one line naming the flag (the rest: test/config/k8s-config.test.ts)', async (t) => {
  const dir = t.testdir({});
  const k = ['--to', '-', '--format', 'k8s-audit'];
  // Independent processes: run them side by side.
  await Promise.all([
    usageError(t, [...k, '--select', 'verb in (create))'], /^auditfwd: --select: unexpected '\)' at column 17 \(expected ','\): verb in \(create\)\)$/),
    usageError(t, ['--to', '-', '--select', 'verb=get'], /--select needs --format k8s-audit or auto/),
    usageError(t, [...k, '--listen-webhook', ':0', '--webhook-token-file', join(dir, 'nope')], /--webhook-token-file: cannot read .*nope \(ENOENT\)/),
  ]);
});

t.test('--format auto from stdin: events get the audit header, other lines stay raw', async (t) => {
  const lines = k8sAuditLines().slice(0, 5);
  const input = ['I1123 10:00:00.000000 1 server.go:1] starting', ...lines, 'not json {'].join('\n') + '\n';
  const run = runAuditfwd(t, ['--to', '-', '--format', 'auto', '--select', 'verb!=watch'], { stdin: input });
  t.equal(await run.exited, 0, run.stderr());
  const msgs = splitOctetCounted(run.stdout()).frames.map((f) => parseRfc5424(f));
  t.equal(msgs.length, 7);
  t.equal(msgs[0].sd.length, 0);
  t.equal(msgs[6].sd.length, 0);
  t.same(msgs.slice(1, 6).map((m) => m.sd[0].params[0][1]), lines.map((l) => JSON.parse(l).auditID));
  t.match(run.stderr(), /"auditEvents":5,"nonEventLines":2/);
});

t.test('file and webhook at once with --dedupe: each (auditID, stage) forwarded once', async (t) => {
  const lines = k8sAuditLines();
  const unique = new Set(lines.map((l) => JSON.parse(l).auditID + '/' + JSON.parse(l).stage));
  t.equal(unique.size, 86, 'the sample data has 2 repeated events');
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  writeFileSync(file, lines.join('\n') + '\n');
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, [
    '--file', file, '--state-dir', join(dir, 'state'), '--to', drain.address,
    '--format', 'k8s-audit', '--dedupe', '--listen-webhook', '127.0.0.1:0',
  ]);
  await run.waitForLog(/webhook listening/);
  const port = webhookPort(run.stderr());
  // The same events by webhook, in batches as kube-apiserver sends them, while the file is read.
  const events = lines.map((l) => JSON.parse(l));
  const replies = await Promise.all(
    [0, 30, 60].map((from) => post(port, JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: events.slice(from, from + 30) }))),
  );
  t.same(replies.map((r) => r.status), [200, 200, 200]);
  await drain.waitFor(unique.size);
  // A last new event at the end of the file: when it arrives, every line before it and every
  // webhook request (all answered already) has been through the encoder.
  appendFileSync(file, JSON.stringify({ ...events[0], auditID: 'sentinel' }) + '\n');
  await drain.waitFor(unique.size + 1);
  const got = drain.messages.map((m) => parseRfc5424(m));
  t.equal(got.length, unique.size + 1, 'nothing twice');
  t.same(new Set(got.slice(0, -1).map((m) => m.sd[0].params[0][1] + '/' + m.msgId)), unique);
  t.equal(got.at(-1)!.sd[0].params[0][1], 'sentinel');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  t.match(run.stderr(), new RegExp(`"dropped":\\{"duplicate":${2 * lines.length - unique.size}\\}`));
});
