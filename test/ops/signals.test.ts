import t from 'tap';
import { appendFileSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { logEntries, seqsOf, until } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { numberedAuditLines } from '../helpers/fixtures.js';

async function startDrain(t: Tap.Test): Promise<TestDrain> {
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  return drain;
}

/** Complete lines in the file before `offset`. */
const linesBefore = (file: string, offset: number) => readFileSync(file).subarray(0, offset).toString().split('\n').length - 1;

t.test('SIGTERM mid-stream: exit 0, what was read is sent or spilled, offsets saved; a restart sends the rest once, in order', async (t) => {
  const lines = numberedAuditLines(3000);
  const dir = t.testdir({ 'audit.log': lines.join('\n') + '\n', state: {} });
  const file = join(dir, 'audit.log');
  const drain = await startDrain(t);
  const args = ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state')];
  const run = runAuditfwd(t, args);
  await drain.waitFor(1);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, run.stderr());
  const stopped = logEntries(run.stderr()).find((e) => e.msg === 'stopped')!;
  const sent = stopped.messages as number;
  const saved = JSON.parse(readFileSync(join(dir, 'state', 'checkpoints.json'), 'utf8')) as { files: Array<{ path: string; offset: number }> };
  const committed = linesBefore(file, saved.files.find((f) => f.path === file)!.offset);
  t.ok(sent > 0 && committed >= sent, `${sent} lines sent, ${committed} committed (the difference waits in the spill)`);
  await drain.waitFor(sent);
  t.strictSame(seqsOf(drain.messages), [...Array(sent).keys()], 'the drain got the first lines, each once, in order');

  const rest = runAuditfwd(t, [...args, '--once']);
  t.equal(await rest.exited, 0, rest.stderr());
  await drain.waitFor(lines.length);
  t.strictSame(seqsOf(drain.messages), [...Array(lines.length).keys()], 'after the restart: every line exactly once, in order');
});

t.test('SIGHUP re-reads the config file: new drain and log level applied and logged, bad files refused, no line lost', async (t) => {
  const lines = numberedAuditLines(1500);
  const dir = t.testdir({ 'audit.log': lines.slice(0, 500).join('\n') + '\n', state: {} });
  const file = join(dir, 'audit.log');
  const config = join(dir, 'auditfwd.yml');
  const a = await startDrain(t);
  const b = await startDrain(t);
  const writeConfig = (to: string, extra = '') =>
    writeFileSync(config, `files: [${JSON.stringify(file)}]\nto: ${to}\nstate_dir: ${JSON.stringify(join(dir, 'state'))}\n${extra}`);
  writeConfig(a.address, 'log_level: warn\n');
  const run = runAuditfwd(t, ['--config', config]);
  await a.waitFor(500);

  writeConfig(b.address, 'log_level: info\nmemory_max_bytes: 1MiB\n');
  run.child.kill('SIGHUP');
  await run.waitForLog(/"msg":"configuration reloaded"/);
  const reloaded = logEntries(run.stderr()).find((e) => e.msg === 'configuration reloaded')!;
  t.strictSame(reloaded.changed, { to: { from: a.address, to: b.address }, logLevel: { from: 'warn', to: 'info' } }, 'what changed is logged');
  const restart = logEntries(run.stderr()).find((e) => /only after a restart/.test(String(e.msg)));
  t.strictSame(restart?.changed, { memoryMaxBytes: { from: null, to: '1MiB' } }, 'what cannot change live is named');
  // The info level is now in effect: the new connection is logged, the first one (at warn) was not.
  await run.waitForLog(new RegExp(`"drain":"${b.address}","msg":"connected to drain"`));
  t.notMatch(run.stderr(), new RegExp(`"drain":"${a.address}","msg":"connected to drain"`));

  appendFileSync(file, lines.slice(500, 1000).join('\n') + '\n');
  await b.waitFor(1);
  writeFileSync(config, 'files: [{a: 1}]\nto: ":"\n');
  run.child.kill('SIGHUP');
  await run.waitForLog(/reload refused/);
  const refused = logEntries(run.stderr()).find((e) => /reload refused/.test(String(e.msg)))!;
  t.match(refused.errors, [/auditfwd.yml:1: files\[0\]: must be a string/, /auditfwd.yml:2: to: /], 'every error of the new file');
  appendFileSync(file, lines.slice(1000).join('\n') + '\n');
  await until('every line delivered', async () => (new Set([...seqsOf(a.messages), ...seqsOf(b.messages)]).size === lines.length ? true : undefined));
  t.equal(new Set(seqsOf(b.messages)).has(lines.length - 1), true, 'the previous configuration kept running');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, run.stderr());
  const all = new Set([...seqsOf(a.messages), ...seqsOf(b.messages)]);
  t.equal(all.size, lines.length, 'every line reached one of the drains');
  t.ok(seqsOf(a.messages).every((s) => s < 500), 'nothing read after the reload went to the old drain');
});
