import t from 'tap';
import { join } from 'node:path';
import { parse } from 'yaml';
import { effectiveYaml, redact, REDACTED, type OptionTable } from '../../src/config/file.js';
import { runAuditfwd } from '../helpers/proc.js';

t.test('every error in a config file at once, each with file, line and key; exit 2', async (t) => {
  const dir = t.testdir({
    'bad.yml': [
      'files:', //                      1
      '  - /var/log/a.log', //          2
      '  - {x: 1}', //                  3
      'to: drain:70000', //             4
      'max_message_bytes: 100', //      5
      'framing: xml', //                6
      'once: "yes"', //                 7
      'frobnicate: 1', //               8
      'stat_dir: /tmp', //              9
      'sd_element: ["nope a=b"]', //   10
      'poll_interval: soon', //        11
      '',
    ].join('\n'),
  });
  const file = join(dir, 'bad.yml');
  const run = runAuditfwd(t, ['--config', file]);
  t.equal(await run.exited, 2);
  const lines = run.stderr().trimEnd().split('\n');
  t.strictSame(lines, [
    `auditfwd: ${file}:3: files[1]: must be a string, not a mapping`,
    `auditfwd: ${file}:4: to: port 70000 is out of range (1-65535)`,
    `auditfwd: ${file}:5: max_message_bytes: 100 is out of range (1024-67108864 bytes)`,
    `auditfwd: ${file}:6: framing: "xml" is not one of octet-counting, lf`,
    `auditfwd: ${file}:7: once: must be true or false, not a string`,
    `auditfwd: ${file}:8: frobnicate: unknown key`,
    `auditfwd: ${file}:9: stat_dir: unknown key (did you mean state_dir?)`,
    `auditfwd: ${file}:10: sd_element: SD-ID "nope" has no "@<enterprise number>" and is not registered with IANA`,
    `auditfwd: ${file}:11: poll_interval: "soon" is not a duration (e.g. 250ms, 5s, 1m)`,
  ]);
  t.notMatch(run.stderr(), /\s+at .*:\d+:\d+/, 'no stack trace');
});

t.test('a flag overrides the file, and its errors name the flag; missing and broken files', async (t) => {
  const dir = t.testdir({ 'c.yml': 'to: drain:1\nframing: xml\n', 'broken.yml': 'to: [\n', 'list.yml': '- a\n- b\n' });
  const flagWins = runAuditfwd(t, ['--config', join(dir, 'c.yml'), '--framing', 'lf', '--max-message-bytes', '1', '--check-config']);
  t.equal(await flagWins.exited, 2);
  t.strictSame(flagWins.stderr().trimEnd().split('\n'), ['auditfwd: --max-message-bytes: 1 is out of range (1024-67108864 bytes)'], 'the file\'s bad framing is overridden by --framing');
  const missing = runAuditfwd(t, ['--config', join(dir, 'nope.yml')]);
  t.equal(await missing.exited, 2);
  t.match(missing.stderr(), /^auditfwd: --config: cannot read .*nope\.yml \(ENOENT\)\n$/);
  const broken = runAuditfwd(t, ['--config', join(dir, 'broken.yml')]);
  t.equal(await broken.exited, 2);
  t.match(broken.stderr(), /^auditfwd: .*broken\.yml:\d+: /);
  const list = runAuditfwd(t, ['--config', join(dir, 'list.yml')]);
  t.equal(await list.exited, 2);
  t.match(list.stderr(), /list\.yml:1: the file must be a mapping/);
});

t.test('--check-config prints the effective configuration; JSON is accepted; the result reads back', async (t) => {
  const dir = t.testdir({
    'c.json': JSON.stringify({ files: ['/var/log/x/audit.log'], to: 'tcp://drain.example.com:6514', state_dir: '/tmp/st', max_message_bytes: 65536, sd_element: { 'instance@47450': { az: 'z1', id: 'a "b"' } } }),
  });
  const run = runAuditfwd(t, ['--config', join(dir, 'c.json'), '--log-level', 'warn', '--check-config']);
  t.equal(await run.exited, 0, run.stderr());
  const out = run.stdout().toString();
  t.match(out, /^# auditfwd: effective configuration/);
  const eff = parse(out) as Record<string, unknown>;
  t.strictSame(eff.files, ['/var/log/x/audit.log']);
  t.equal(eff.to, 'tcp://drain.example.com:6514');
  t.equal(eff.log_level, 'warn', 'the flag');
  t.equal(eff.max_message_bytes, '65536');
  t.equal(eff.framing, 'octet-counting', 'a default');
  t.strictSame(eff.sd_element, ['instance@47450 az="z1" id="a \\"b\\""']);
  t.equal(run.stderr(), '', 'nothing started, nothing logged');
  // What --check-config prints is itself a valid config file with the same effect.
  const again = t.testdir({ 'eff.yml': out });
  const rerun = runAuditfwd(t, ['--config', join(again, 'eff.yml'), '--check-config']);
  t.equal(await rerun.exited, 0, rerun.stderr());
  t.equal(rerun.stdout().toString().split('\n').slice(1).join('\n'), out.split('\n').slice(1).join('\n'));
});

t.test('secrets are redacted, whatever flag they come from', async (t) => {
  t.equal(redact('tls-passphrase', 'hunter2'), REDACTED);
  t.equal(redact('webhook-token', 'abc'), REDACTED);
  t.equal(redact('key', '/etc/auditfwd/key.pem'), '/etc/auditfwd/key.pem', 'a path to a key is not the key');
  t.equal(redact('webhook-token-file', '/etc/auditfwd/token'), '/etc/auditfwd/token', 'nor is a path to a token');
  t.equal(redact('webhookTokenFile', '/etc/auditfwd/token'), '/etc/auditfwd/token');
  t.equal(redact('key', '-----BEGIN EC PRIVATE KEY-----\nMHc...'), REDACTED, 'key material is');
  t.equal(redact('to', 'tcp://d:1'), 'tcp://d:1');
  const options: OptionTable = { key: { to: true, 'tls-passphrase': true, help: true }, boolean: ['help'], array: [], number: [], alias: {} };
  const yaml = effectiveYaml(options, { to: 'd:1', tlsPassphrase: 'hunter2' }, {}, 'flags');
  t.notMatch(yaml, /hunter2/);
  t.match(yaml, /tls_passphrase: <redacted>/);
  t.notMatch(yaml, /help/);
});

t.test('a flag declared in cli.ts is a config-file key with no further work', async (t) => {
  // --reconnect-max-delay is declared only in the settings table the command line is read with.
  const dir = t.testdir({ 'c.yml': 'to: "-"\nreconnect_max_delay: 2s\nshutdown-timeout: 1s\n' });
  const run = runAuditfwd(t, ['--config', join(dir, 'c.yml'), '--check-config']);
  t.equal(await run.exited, 0, run.stderr());
  const eff = parse(run.stdout().toString()) as Record<string, unknown>;
  t.equal(eff.reconnect_max_delay, '2s');
  t.equal(eff.shutdown_timeout, '1s', 'the dashed spelling is accepted too');
});
