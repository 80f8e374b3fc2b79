import t from 'tap';
import { execFileSync } from 'node:child_process';
import { chmodSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { runAuditfwd, usageError } from '../helpers/proc.js';

t.test('40,000 unknown keys and a duplicate: exit 2, 20 problems and a count, checked in one pass', async (t) => {
  const dir = t.testdir({});
  const file = join(dir, 'many.yml');
  writeFileSync(file, `to: '-'\nto: 'x:1'\n` + Array.from({ length: 40_000 }, (_, i) => `k${i}: 1`).join('\n') + '\n');
  const run = runAuditfwd(t, ['--config', file]);
  t.equal(await run.exited, 2);
  const lines = run.stderr().trimEnd().split('\n');
  t.equal(lines.length, 21, '20 problems, then how many more');
  t.match(lines[0], /many\.yml:2: to: given twice/);
  t.match(lines[1], /many\.yml:3: k0: unknown key/);
  t.match(lines[20], /many\.yml: 39981 more problems not shown/);
});

t.test('a config file too big, a FIFO, a folder: one line each, nothing hangs', async (t) => {
  const dir = t.testdir({ folder: {} });
  const big = join(dir, 'big.yml');
  writeFileSync(big, `# ${'x'.repeat(1024 * 1024)}\nto: '-'\n`);
  await usageError(t, ['--config', big], /--config: cannot read .*big\.yml \(larger than 1048576 bytes\)/);
  const fifo = join(dir, 'fifo.yml');
  execFileSync('mkfifo', [fifo]);
  await usageError(t, ['--config', fifo], /--config: cannot read .*fifo\.yml \(not a regular file\)/);
  await usageError(t, ['--config', join(dir, 'folder')], /--config: cannot read .*folder \(not a regular file\)/);
});

t.test('a secret typed into the wrong key is never echoed', async (t) => {
  const secret = 'PassPhr4seXYZ';
  const dir = t.testdir({
    'bool.yml': `to: '-'\ntls: ${secret}\n`,
    'list.yml': `to: '-'\nonce: [${secret}]\n`,
    'token.yml': `to: '-'\nlisten_webhook: 127.0.0.1:0\nwebhook_token_file: ${secret}\n`,
    'pass.yml': `to: tls://127.0.0.1:1\ncert: /nonexistent/c.pem\nkey: /nonexistent/k.pem\nkey_passphrase_file: ${secret}\n`,
  });
  for (const name of ['bool.yml', 'list.yml', 'token.yml']) {
    const run = runAuditfwd(t, ['--config', join(dir, name)]);
    t.equal(await run.exited, 2, name);
    t.notMatch(run.stderr(), secret, `${name}: not in the error`);
    t.match(run.stderr(), /^auditfwd: (.*: )?(tls|once|webhook_token_file|--webhook-token-file)/m, `${name}: the key is named`);
  }
  await usageError(t, ['--config', join(dir, 'bool.yml')], /tls: must be true or false, not a string$/);
  await usageError(t, ['--config', join(dir, 'token.yml')], /--webhook-token-file: cannot read the file it names \(not shown: it does not look like a path\) \(ENOENT\)/);
});

t.test('sd_element values that are not scalars: exit 2, never "[object Object]"', async (t) => {
  const dir = t.testdir({
    'nested.yml': `to: '-'\nsd_element: {"x@1": {a: {b: 1}}}\n`,
    'list.yml': `to: '-'\nsd_element: {"x@1": [1, 2]}\n`,
  });
  await usageError(t, ['--config', join(dir, 'nested.yml')], /nested\.yml:2: sd_element: x@1: parameter a must be a string or a number, not a mapping/);
  await usageError(t, ['--config', join(dir, 'list.yml')], /list\.yml:2: sd_element: x@1: must be a mapping of parameter names to values/);
});

t.test('a webhook token file others can read is warned about, as --key is', async (t) => {
  const dir = t.testdir({ token: 'tok-123\n' });
  chmodSync(join(dir, 'token'), 0o644);
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const run = runAuditfwd(t, ['--to', drain.address, '--listen-webhook', '127.0.0.1:0', '--webhook-token-file', join(dir, 'token')]);
  await run.waitForLog(/webhook listening/);
  t.match(run.stderr(), /"level":40,.*--webhook-token-file: .*token is readable by every user \(mode 644\); use 0600 or 0640/);
  t.notMatch(run.stderr(), /tok-123/, 'the token itself is not logged');
});
