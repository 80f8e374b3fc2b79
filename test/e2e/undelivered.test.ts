import t from 'tap';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { auditLines } from '../helpers/fixtures.js';
import { post, webhookPort } from '../helpers/http.js';
import { freePort } from '../helpers/net.js';
import { runAuditfwd } from '../helpers/proc.js';

/**
 * --exit-timeout and the shutdown deadline hold on every path, and a run that did not deliver what it
 * read says how much and exits 75. stdin and webhook lines held only in memory cannot be read again:
 * nothing may claim they are.
 */
const lines = auditLines().slice(0, 20);
const input = lines.join('\n') + '\n';
const quick = ['--log-format', 'json', '--reconnect-max-delay', '200ms'];

function notDelivered(stderr: string): { lines: number; bytes: number } | undefined {
  const m = /"lines":(\d+),"bytes":(\d+)[^\n]*not delivered: /.exec(stderr);
  return m ? { lines: Number(m[1]), bytes: Number(m[2]) } : undefined;
}

t.test('stdin, no spill, drain down: --exit-timeout ends the run, exit 75 with what was not delivered', async (t) => {
  const port = await freePort();
  const started = Date.now();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${port}`, '--exit-timeout', '500ms', ...quick], { stdin: input });
  t.equal(await run.exited, 75, run.stderr());
  t.ok(Date.now() - started < 20_000, 'it did not wait for ever');
  const lost = notDelivered(run.stderr());
  t.equal(lost?.lines, lines.length, 'every line is counted');
  t.ok(lost!.bytes > input.length, 'the framed bytes, more than the input');
  t.match(run.stderr(), /giving up on the rest/);
  t.notMatch(run.stderr(), /read again at the next start/);
  t.notMatch(run.stderr(), /all input delivered/);
});

t.test('stdin, no spill, drain down, SIGTERM: exit 75 after the shutdown deadline, never "read again"', async (t) => {
  const port = await freePort();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${port}`, '--shutdown-timeout', '200ms', ...quick], { stdin: 'pipe' });
  run.child.stdin!.write(input);
  await run.waitForLog(/cannot connect to drain/);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 75, run.stderr());
  t.equal(notDelivered(run.stderr())?.lines, lines.length);
  t.match(run.stderr(), /shutdown deadline reached/);
  t.notMatch(run.stderr(), /read again at the next start/);
});

t.test('stdin with a spill, drain down: --exit-timeout leaves the rest in the spill, exit 75', async (t) => {
  const dir = t.testdir({});
  const port = await freePort();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${port}`, '--state-dir', join(dir, 'state'), '--exit-timeout', '300ms', ...quick], { stdin: input });
  t.equal(await run.exited, 75, run.stderr());
  t.match(run.stderr(), /leaving the rest in the spill/);
  t.match(run.stderr(), /left in the spill; sent first at the next start/);
  t.equal(notDelivered(run.stderr()), undefined, 'nothing lost: it is on disk');
});

t.test('stdin, drain up: exit 0, nothing reported lost', async (t) => {
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--to', drain.address, '--exit-timeout', '500ms', ...quick], { stdin: input });
  t.equal(await run.exited, 0, run.stderr());
  t.equal(drain.messages.length, lines.length);
  t.equal(notDelivered(run.stderr()), undefined);
});

t.test('webhook, no spill, drain down, SIGTERM: exit 75 and the lines not delivered are counted', async (t) => {
  const port = await freePort();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${port}`, '--format', 'k8s-audit', '--listen-webhook', '127.0.0.1:0', '--webhook-timeout', '200ms', '--shutdown-timeout', '200ms', ...quick]);
  await run.waitForLog(/webhook listening/);
  const events = lines.slice(0, 3).map((l) => JSON.parse(l) as unknown);
  const r = await post(webhookPort(run.stderr()), JSON.stringify({ kind: 'EventList', apiVersion: 'audit.k8s.io/v1', items: events }));
  t.equal(r.status, 503, 'not on a socket nor in a spill: not acknowledged');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 75, run.stderr());
  t.equal(notDelivered(run.stderr())?.lines, events.length);
  t.notMatch(run.stderr(), /read again at the next start/);
});

t.test('TLS to a plain-TCP drain: --exit-timeout 1.5s ends it in about 1.5 s, with a hint', async (t) => {
  // A plain-TCP syslog port: accepts the connection, reads, never answers a TLS ClientHello.
  const server = createServer((sock) => sock.resume());
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    server.close();
    server.closeAllConnections?.();
  });
  const { port } = server.address() as { port: number };
  const started = Date.now();
  const run = runAuditfwd(t, ['--to', `tls://127.0.0.1:${port}`, '--exit-timeout', '1.5s', ...quick], { stdin: input });
  t.equal(await run.exited, 75, run.stderr());
  const took = Date.now() - started;
  // The connect timeout is 10 s: finishing well before it shows the handshake was not waited out.
  t.ok(took >= 1500 && took < 8000, `took ${took} ms`);
  t.match(run.stderr(), /may not speak TLS on this port/);
});

t.test('after logging "stopped" the process is gone at once', async (t) => {
  const dir = t.testdir({ 'audit.log': input });
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--file', join(dir, 'audit.log'), '--to', drain.address, '--state-dir', join(dir, 'state'), '--metrics-listen', '127.0.0.1:0', ...quick]);
  await drain.waitFor(lines.length);
  run.child.kill('SIGTERM');
  await run.waitForLog(/"msg":"stopped"/);
  const logged = Date.now();
  t.equal(await run.exited, 0);
  t.ok(Date.now() - logged < 1000, `exited ${Date.now() - logged} ms after "stopped"`);
});
