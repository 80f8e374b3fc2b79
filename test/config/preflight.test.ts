import t from 'tap';
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hasOpenssl, TestPki } from '../helpers/certs.js';
import { runAuditfwd } from '../helpers/proc.js';

/**
 * --check-config is the systemd unit's pre-flight: what passes it must not fail at start. It loads
 * every file the settings name and checks the folders, and reports every problem at once.
 */
const skip = !hasOpenssl() && 'openssl is not installed';

t.test('--check-config reports every file and folder problem at once, exit 2', { skip }, async (t) => {
  const dir = t.testdir({ 'passphrase-wrong': 'not-it\n', 'not-a-dir': 'x' });
  const pki = new TestPki(join(dir, 'pki'));
  const ca = pki.ca('ca');
  const client = pki.issue(ca, 'client', { usage: 'client', passphrase: 'right' });
  const server = pki.issue(ca, 'server');
  const config = [
    `files: [${JSON.stringify(join(dir, 'audit.log'))}]`,
    'to: tls://127.0.0.1:6514',
    `state_dir: ${JSON.stringify(join(dir, 'not-a-dir', 'state'))}`,
    `ca: ${JSON.stringify(join(dir, 'missing-ca.pem'))}`,
    `cert: ${JSON.stringify(client.cert)}`,
    `key: ${JSON.stringify(client.key)}`,
    `key_passphrase_file: ${JSON.stringify(join(dir, 'passphrase-wrong'))}`,
    'format: k8s-audit',
    'listen_webhook: 127.0.0.1:0',
    `webhook_tls_cert: ${JSON.stringify(join(dir, 'missing-webhook.pem'))}`,
    `webhook_tls_key: ${JSON.stringify(server.key)}`,
    '',
  ].join('\n');
  writeFileSync(join(dir, 'c.yml'), config);
  const run = runAuditfwd(t, ['--config', join(dir, 'c.yml'), '--check-config']);
  t.equal(await run.exited, 2, run.stderr());
  const lines = run.stderr().trimEnd().split('\n');
  t.match(lines, [/--ca: cannot read .*missing-ca\.pem \(ENOENT\)/, /--webhook-tls-cert: cannot read .*missing-webhook\.pem \(ENOENT\)/, /--state-dir: cannot create .*not-a-dir\/state: .*not-a-dir is not a directory/]);
  t.equal(lines.length, 3, `one line each:\n${run.stderr()}`);
  t.equal(run.stdout().length, 0, 'no configuration printed');
  t.notOk(existsSync(join(dir, 'state')), 'nothing created');

  // With the files there, the wrong passphrase is what is left.
  writeFileSync(join(dir, 'c2.yml'), config.replace(join(dir, 'missing-ca.pem'), ca.cert).replace(join(dir, 'missing-webhook.pem'), server.cert).replace(join(dir, 'not-a-dir', 'state'), join(dir, 'state')));
  const second = runAuditfwd(t, ['--config', join(dir, 'c2.yml'), '--check-config']);
  t.equal(await second.exited, 2, second.stderr());
  t.match(second.stderr(), /passphrase/);
  t.notOk(existsSync(join(dir, 'state')), '--check-config creates no folder');
  t.notMatch(second.stderr(), /not-it/, 'the passphrase itself is never shown');

  writeFileSync(join(dir, 'passphrase-wrong'), 'right\n');
  const good = runAuditfwd(t, ['--config', join(dir, 'c2.yml'), '--check-config']);
  t.equal(await good.exited, 0, good.stderr());
});

t.test('state and spill folders: not writable, or on a kernel file system, is a clear error', async (t) => {
  const dir = t.testdir({ 'audit.log': '' });
  const log = join(dir, 'audit.log');
  const run = runAuditfwd(t, ['--file', log, '--to', '127.0.0.1:1', '--state-dir', '/proc/self/auditfwd', '--buffer-dir', '/sys/kernel/auditfwd', '--check-config']);
  t.equal(await run.exited, 2);
  t.match(run.stderr(), /--state-dir: \/proc\/self\/auditfwd is on proc, a kernel file system/);
  t.match(run.stderr(), /--buffer-dir: \/sys\/kernel\/auditfwd is on sysfs, a kernel file system/);

  // A real start fails the same way, at once, instead of hanging.
  const start = runAuditfwd(t, ['--file', log, '--to', '127.0.0.1:1', '--state-dir', '/proc/self/auditfwd']);
  t.equal(await start.exited, 2);
  t.match(start.stderr(), /--state-dir: .* is on proc/);
});

t.test('a start creates the state and spill folders and proves them writable', async (t) => {
  const dir = t.testdir({ 'audit.log': 'one\n' });
  const run = runAuditfwd(t, ['--file', join(dir, 'audit.log'), '--to', '-', '--once', '--state-dir', join(dir, 'a', 'state'), '--buffer-dir', join(dir, 'b', 'spill')]);
  t.equal(await run.exited, 0, run.stderr());
  t.ok(existsSync(join(dir, 'a', 'state')) && existsSync(join(dir, 'b', 'spill')));
});
