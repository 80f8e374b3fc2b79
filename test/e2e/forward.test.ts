import t from 'tap';
import { appendFileSync, readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { freePort } from '../helpers/net.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';
import { k8sAuditPath } from '../helpers/fixtures.js';

const SAMPLE = k8sAuditPath('falcosecurity-falco.jsonl');
const sampleLines = () => readFileSync(SAMPLE, 'utf8').split('\n').filter(Boolean);

async function startDrain(t: Tap.Test, opts = {}) {
  const drain = await TestDrain.start(opts);
  t.teardown(() => drain.close());
  return drain;
}

t.test('stdin to a TCP drain: every line, in order, exit 0', async (t) => {
  const drain = await startDrain(t);
  const lines = sampleLines();
  const run = runAuditfwd(t, ['--to', drain.address, '--hostname', 'master-0'], { stdin: lines.join('\n') + '\n' });
  t.equal(await run.exited, 0, run.stderr());
  await drain.waitFor(lines.length);
  const msgs = drain.messages.map((m) => parseRfc5424(m));
  t.same(msgs.map((m) => m.msg.toString()), lines);
  t.equal(msgs[0].appName, 'auditfwd');
  t.equal(msgs[0].hostname, 'master-0');
  t.equal(msgs[0].pri, 14, 'user.info by default');
});

t.test('--to - writes the framed stream to stdout, logs stay on stderr', async (t) => {
  const run = runAuditfwd(t, ['--to', '-'], { stdin: 'one\ntwo\nthree' });
  t.equal(await run.exited, 0);
  const { frames, rest } = splitOctetCounted(run.stdout());
  t.equal(rest.length, 0);
  t.same(frames.map((f) => parseRfc5424(f).msg.toString()), ['one', 'two', 'three'], 'last line without LF is sent at EOF');
  t.match(run.stderr(), /"msg":"all input delivered"/);
});

t.test('--framing lf', async (t) => {
  const drain = await startDrain(t, { framing: 'lf' });
  const run = runAuditfwd(t, ['--to', `tcp://${drain.address}`, '--framing', 'lf'], { stdin: 'a\nb\n' });
  t.equal(await run.exited, 0);
  await drain.waitFor(2);
  t.same(drain.messages.map((m) => parseRfc5424(m).msg.toString()), ['a', 'b']);
});

t.test('IPv6 literal destination', async (t) => {
  const drain = await startDrain(t);
  const run = runAuditfwd(t, ['--to', `[::ffff:127.0.0.1]:${drain.port}`], { stdin: 'v6\n' });
  t.equal(await run.exited, 0, run.stderr());
  await drain.waitFor(1);
  t.equal(parseRfc5424(drain.messages[0]).msg.toString(), 'v6');
});

t.test('--once reads a file to its end, delivers, exits; a second run sends nothing again', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': { 'audit.log': sampleLines().join('\n') + '\npartial' }, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  const drain = await startDrain(t);
  const args = ['--file', file, '--to', drain.address, '--once', '--state-dir', join(dir, 'state')];
  const run = runAuditfwd(t, args);
  t.equal(await run.exited, 0, run.stderr());
  await drain.waitFor(sampleLines().length);
  const msgs = drain.messages.map((m) => parseRfc5424(m));
  t.equal(msgs.length, sampleLines().length, 'the partial last line is not sent');
  t.equal(msgs[0].appName, 'kube-apiserver', 'APP-NAME is the parent folder');
  t.match(run.stderr(), /last line has no LF yet/);

  appendFileSync(file, ' done\nnext\n');
  const again = runAuditfwd(t, args);
  t.equal(await again.exited, 0, again.stderr());
  await drain.waitFor(sampleLines().length + 2);
  t.same(drain.messages.slice(sampleLines().length).map((m) => parseRfc5424(m).msg.toString()), ['partial done', 'next']);
});

t.test('follows a file as it grows; a file that appears later is waited for', async (t) => {
  const dir = t.testdir({ logs: {}, state: {} });
  const file = join(dir, 'logs', 'audit.log');
  const drain = await startDrain(t);
  const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state')]);
  await run.waitForLog(/does not exist yet/);
  writeFileSync(file, 'first\n');
  await drain.waitFor(1);
  appendFileSync(file, 'sec');
  appendFileSync(file, 'ond\nthird\n');
  await drain.waitFor(3);
  t.same(drain.messages.map((m) => parseRfc5424(m).msg.toString()), ['first', 'second', 'third']);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'SIGTERM exits 0');
  const state = JSON.parse(readFileSync(join(dir, 'state', 'checkpoints.json'), 'utf8'));
  t.equal(state.files[0].offset, 'first\nsecond\nthird\n'.length, 'offset saved at shutdown');
});

t.test('a drain that starts late gets everything', async (t) => {
  const port = await freePort();
  const run = runAuditfwd(t, ['--to', `127.0.0.1:${port}`, '--reconnect-max-delay', '500ms'], { stdin: 'early1\nearly2\n' });
  await run.waitForLog(/cannot connect to drain/);
  const drain = await startDrain(t, { port });
  await drain.waitFor(2);
  t.equal(await run.exited, 0);
  t.same(drain.messages.map((m) => parseRfc5424(m).msg.toString()), ['early1', 'early2']);
});

t.test('a slow drain: reading follows the socket, memory stays bounded', async (t) => {
  const dir = t.testdir({ app: {}, state: {} });
  const file = join(dir, 'app', 'big.log');
  const line = 'x'.repeat(1000);
  const n = 200_000; // 200 MB
  const chunk = (line + '\n').repeat(1000);
  mkdirSync(join(dir, 'app'), { recursive: true });
  writeFileSync(file, '');
  for (let i = 0; i < n / 1000; i++) appendFileSync(file, chunk);
  const drain = await startDrain(t);
  drain.pause();
  const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--once', '--state-dir', join(dir, 'state'), '--memory-max-bytes', '8MiB']);
  await run.waitForLog(/connected to drain/);
  // While the drain reads nothing, the process must not read the whole file into memory.
  let peak = 0;
  for (let i = 0; i < 10; i++) {
    await new Promise((r) => setTimeout(r, 100));
    peak = Math.max(peak, rssOf(run.child.pid!));
  }
  drain.resume();
  await drain.waitFor(n);
  t.equal(await run.exited, 0);
  t.equal(drain.messages.length, n, 'every line arrived');
  t.equal(parseRfc5424(drain.messages[n - 1]).msg.toString(), line);
  t.ok(peak < 120 * 1024 * 1024, `peak RSS while the drain was stalled: ${(peak / 1048576).toFixed(1)} MiB`);
});

/** Sends "a", drops the drain's side of the connection, sends "b"; returns what the drain received. */
async function acrossADrop(t: Tap.Test, extra: string[]) {
  const drain = await startDrain(t);
  const run = runAuditfwd(t, ['--to', drain.address, '--reconnect-max-delay', '300ms', ...extra], { stdin: 'pipe' });
  run.child.stdin!.write('a\n');
  await drain.waitFor(1);
  drain.dropConnections();
  await run.waitForLog(/connection to drain lost/);
  run.child.stdin!.end('b\n');
  t.equal(await run.exited, 0);
  await drain.waitFor(2);
  return { drain, received: drain.messages.map((m) => parseRfc5424(m).msg.toString()) };
}

t.test('a drain that drops the connection: reconnect and deliver the rest', async (t) => {
  const { drain } = await acrossADrop(t, []);
  await drain.waitFor(3);
  t.same(drain.messages.map((m) => parseRfc5424(m).msg.toString()), ['a', 'a', 'b'], 'what the lost connection carried is sent again first (--tcp-resend-window)');
  t.equal(drain.connections, 2);
});

t.test('--tcp-resend-window 0: a dropped connection is not followed by a resend', async (t) => {
  const { received } = await acrossADrop(t, ['--tcp-resend-window', '0']);
  t.same(received, ['a', 'b']);
});

function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    return Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0) * 1024;
  } catch {
    return 0;
  }
}
