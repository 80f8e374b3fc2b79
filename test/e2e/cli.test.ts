import t from 'tap';
import { chmodSync, chownSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { BIN, runAuditfwd, usageError } from '../helpers/proc.js';
import { GROUPS, SETTINGS } from '../../src/config/options.js';

/** Why the unprivileged checks cannot run here, or false when they can. */
function cannotRunAsNobody(): string | false {
  if (process.getuid?.() !== 0) return 'needs root to switch to an unprivileged user';
  const probe = spawnSync('test', ['-r', BIN], { uid: 65534, gid: 65534 });
  return probe.status === 0 ? false : `user nobody cannot reach ${BIN} (a parent folder is not world-readable)`;
}

t.test('bad invocations exit 2 with one line naming the flag', async (t) => {
  const dir = t.testdir({ 'afile': 'x\n', 'unreadable.log': 'secret\n' });
  await usageError(t, [], /--to is required/);
  await usageError(t, ['--to', 'drain.example.com'], /--to: .*no port/);
  await usageError(t, ['--to', 'drain.example.com:'], /--to: .*no port/);
  await usageError(t, ['--to', 'drain:70000'], /--to: port 70000 is out of range/);
  await usageError(t, ['--to', 'drain:0'], /--to: port 0 is out of range/);
  await usageError(t, ['--to', 'ftp://drain:1'], /--to: unknown scheme "ftp"/);
  await usageError(t, ['--to', 'drain:514', '--nats-subject', 'a'], /--nats-subject: only for a NATS destination/);
  await usageError(t, ['--to', 'nats://n1,n2', '--nats-creds', join(dir, 'missing.creds')], /--nats-creds: cannot read .*missing\.creds \(ENOENT\)/);
  await usageError(t, ['--to', 'drain:514', '--frobnicate'], /unknown flag --frobnicate/);
  await usageError(t, ['--to', 'drain:514', '--framing', 'xml'], /--framing: "xml" is not one of octet-counting, lf/);
  await usageError(t, ['--to', 'drain:514', '--start-at', 'middle'], /--start-at/);
  await usageError(t, ['--to', 'drain:514', '--facility', 'nope'], /--facility/);
  await usageError(t, ['--to', 'drain:514', '--severity', '9'], /--severity: 9 is out of range/);
  await usageError(t, ['--to', 'drain:514', '--max-message-bytes', '100'], /--max-message-bytes/);
  await usageError(t, ['--to', 'drain:514', '--max-message-bytes', '65MiB'], /--max-message-bytes/);
  await usageError(t, ['--to', 'drain:514', '--memory-max-bytes', 'lots'], /--memory-max-bytes: "lots" is not a size/);
  await usageError(t, ['--to', 'drain:514', '--file', join(dir, 'x.log'), '--state-dir', join(dir, 'afile')], /--state-dir: .*afile is not a directory/);
  await usageError(t, ['--to', 'drain:514', '--file', dir], /--file: .* is a directory/);
});

t.test('a file that cannot be read, a state dir that is not writable (as an unprivileged user)', { skip: cannotRunAsNobody() }, async (t) => {
  const dir = t.testdir({ 'unreadable.log': 'secret\n', state: {}, ro: {} });
  chmodSync(dir, 0o755);
  chmodSync(join(dir, 'unreadable.log'), 0o600);
  chmodSync(join(dir, 'ro'), 0o555);
  writeFileSync(join(dir, 'readable.log'), 'ok\n', { mode: 0o644 });
  chownSync(join(dir, 'state'), 65534, 65534);
  const nobody = { uid: 65534, gid: 65534, env: { HOME: dir } };
  await usageError(t, ['--to', '-', '--file', join(dir, 'unreadable.log'), '--state-dir', join(dir, 'state')], /--file: .*unreadable.log cannot be read \(EACCES\)/, nobody);
  await usageError(t, ['--to', '-', '--file', join(dir, 'readable.log'), '--state-dir', join(dir, 'ro')], /--state-dir: .* is not writable/, nobody);
});

t.test('--help and --version', async (t) => {
  const help = runAuditfwd(t, ['--help']);
  t.equal(await help.exited, 0);
  const text = help.stdout().toString();
  t.match(text, /--max-message-bytes/);
  // Grouped: each group's heading, and every flag of the settings table under one of them.
  const headings = [...text.matchAll(/^(\S[^\n]*):$/gm)].map((m) => m[1]);
  t.strictSame(headings.filter((h) => GROUPS.includes(h as (typeof GROUPS)[number])), [...GROUPS]);
  for (const s of SETTINGS) t.match(text, new RegExp(`--${s.flag}\\b`), `--${s.flag} in --help`);
  const version = runAuditfwd(t, ['--version']);
  t.equal(await version.exited, 0);
  t.match(version.stdout().toString(), /^\d+\.\d+\.\d+/);
});
