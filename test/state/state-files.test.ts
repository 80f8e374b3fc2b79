import t from 'tap';
import { appendFileSync, chmodSync, chownSync, linkSync, lstatSync, mkdirSync, readFileSync, readlinkSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { runAuditfwd, usageError } from '../helpers/proc.js';
import { savedOffset } from '../helpers/state.js';

const asRoot = process.getuid?.() === 0 ? false : 'the attack is on a root-run auditfwd; needs root';

/** A run that reads `log` to its end into stdout and exits 0. */
async function once(t: Tap.Test, log: string, state: string): Promise<string> {
  const run = runAuditfwd(t, ['--to', '-', '--file', log, '--state-dir', state, '--once', '--log-level', 'warn']);
  t.equal(await run.exited, 0, `exit 0 (${run.stderr()})`);
  return run.stdout().toString();
}

t.test('a symlink planted at the temp name is replaced, its target untouched', { skip: asRoot }, async (t) => {
  const dir = t.testdir({ 'audit.log': '{"a":1}\n', 'precious.conf': 'root-owned config\n', state: {} });
  chmodSync(join(dir, 'precious.conf'), 0o644);
  const state = join(dir, 'state');
  symlinkSync(join(dir, 'precious.conf'), join(state, 'checkpoints.json.tmp'));
  t.match(await once(t, join(dir, 'audit.log'), state), /\{"a":1\}/);
  t.equal(readFileSync(join(dir, 'precious.conf'), 'utf8'), 'root-owned config\n', 'target content unchanged');
  t.equal(statSync(join(dir, 'precious.conf')).mode & 0o777, 0o644, 'target mode unchanged');
  const saved = lstatSync(join(state, 'checkpoints.json'));
  t.ok(saved.isFile(), 'checkpoints.json is a regular file');
  t.equal(saved.mode & 0o777, 0o600);
  t.throws(() => lstatSync(join(state, 'checkpoints.json.tmp')), 'no temp file left');
});

t.test('a hard link or symlink planted at the quick save\'s temp name: the targets are untouched', { skip: asRoot }, async (t) => {
  const dir = t.testdir({ 'audit.log': '{"a":1}\n', 'hard.conf': 'hard-linked config\n', 'soft.conf': 'linked config\n', state: {} });
  for (const f of ['hard.conf', 'soft.conf']) chmodSync(join(dir, f), 0o644);
  const state = join(dir, 'state');
  linkSync(join(dir, 'hard.conf'), join(state, 'checkpoints.json.quick.tmp'));
  // Followed, with the durable save far away: only the quick save (within 50 ms) writes the state.
  const run = runAuditfwd(t, ['--to', '-', '--file', join(dir, 'audit.log'), '--state-dir', state, '--checkpoint-interval', '10m', '--log-level', 'warn']);
  await savedOffset(state, 8);
  symlinkSync(join(dir, 'soft.conf'), join(state, 'checkpoints.json.quick.tmp'));
  appendFileSync(join(dir, 'audit.log'), '{"b":2}\n');
  t.equal(await savedOffset(state, 16), 16, 'the second line is saved by a quick save');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  t.equal(readFileSync(join(dir, 'hard.conf'), 'utf8'), 'hard-linked config\n', 'hard-linked target unchanged');
  t.equal(readFileSync(join(dir, 'soft.conf'), 'utf8'), 'linked config\n', 'symlinked target unchanged');
  for (const f of ['hard.conf', 'soft.conf']) t.equal(statSync(join(dir, f)).mode & 0o777, 0o644, `${f} mode unchanged`);
});

t.test('a checkpoints.json that is a symlink is set aside, not read nor echoed', async (t) => {
  const dir = t.testdir({ 'audit.log': '{"a":1}\n', 'secret.txt': 'TOPSECRET-CONTENT\n', state: {} });
  const state = join(dir, 'state');
  symlinkSync(join(dir, 'secret.txt'), join(state, 'checkpoints.json'));
  const run = runAuditfwd(t, ['--to', '-', '--file', join(dir, 'audit.log'), '--state-dir', state, '--once']);
  t.equal(await run.exited, 0);
  t.notMatch(run.stderr(), /TOPSECRET/, 'the target\'s bytes are not in the log');
  t.match(run.stderr(), /"reason":"is a symbolic link"/);
  const aside = /"movedTo":"([^"]+)"/.exec(run.stderr())?.[1];
  t.ok(aside && readlinkSync(aside) === join(dir, 'secret.txt'), 'the link itself was moved aside');
  t.equal(readFileSync(join(dir, 'secret.txt'), 'utf8'), 'TOPSECRET-CONTENT\n', 'target untouched');
});

t.test('a state folder others can write or own is refused like ssh does; one auditfwd creates is 0700', async (t) => {
  const dir = t.testdir({ 'audit.log': '{"a":1}\n', open: {}, group: {} });
  chmodSync(join(dir, 'open'), 0o777);
  chmodSync(join(dir, 'group'), 0o770);
  const log = join(dir, 'audit.log');
  await usageError(t, ['--to', '-', '--file', log, '--state-dir', join(dir, 'open')], /--state-dir: .*open is writable by every user \(mode 0777\)/);
  await usageError(t, ['--to', '-', '--file', log, '--state-dir', join(dir, 'group')], /--state-dir: .*group is writable by its group \(mode 0770\)/);
  t.equal(statSync(join(dir, 'open')).mode & 0o777, 0o777, 'not silently chmodded');
  if (process.getuid?.() === 0) {
    mkdirSync(join(dir, 'foreign'), { mode: 0o700 });
    chownSync(join(dir, 'foreign'), 65534, 65534);
    await usageError(t, ['--to', '-', '--file', log, '--state-dir', join(dir, 'foreign')], /--state-dir: .*foreign is owned by uid 65534, not by this user/);
  }
  const fresh = join(dir, 'new', 'state');
  await once(t, log, fresh);
  t.equal(statSync(fresh).mode & 0o777, 0o700, 'created 0700');
  t.equal(statSync(join(fresh, 'checkpoints.json')).mode & 0o777, 0o600);
});

t.test('damaged entries are dropped one by one; the rest still count; nothing crashes', async (t) => {
  const dir = t.testdir({ 'audit.log': '{"n":1}\n{"n":2}\n', state: {} });
  const log = join(dir, 'audit.log');
  const state = join(dir, 'state');
  t.match(await once(t, log, state), /"n":2/);
  const good = JSON.parse(readFileSync(join(state, 'checkpoints.json'), 'utf8')).files[0];
  t.equal(good.offset, 16, 'both lines committed');
  const bad = (patch: Record<string, unknown>) => ({ ...good, ino: good.ino + 1, ...patch });
  const variants = [{ fpLen: -1 }, { fpLen: 2.5 }, { offset: -100 }, { offset: '14' }, { offset: 10.5 }, { offset: null }, { fp: 'zz' }, { dev: 1e300 }];
  writeFileSync(join(state, 'checkpoints.json'), JSON.stringify({ version: 1, files: [...variants.map(bad), good] }));
  const run = runAuditfwd(t, ['--to', '-', '--file', log, '--state-dir', state, '--once']);
  t.equal(await run.exited, 0);
  t.equal(run.stdout().length, 0, 'the valid entry still counts: nothing is sent again');
  const dropped = run.stderr().split('\n').filter((l) => /checkpoint entry \d+: .*dropped/.test(l));
  t.equal(dropped.length, variants.length, 'one line per damaged entry');
  t.match(dropped[0], /entry 0: fpLen/);
  t.match(dropped[3], /entry 3: offset is not a non-negative integer/);
  const after = JSON.parse(readFileSync(join(state, 'checkpoints.json'), 'utf8')).files;
  t.same(after.map((c: { offset: number }) => c.offset), [16], 'damaged entries are not saved back');

  // The live file's own entry damaged: that file is read as new (from its start), not from a fragment.
  writeFileSync(join(state, 'checkpoints.json'), JSON.stringify({ version: 1, files: [{ ...good, offset: 3.5 }] }));
  const again = await once(t, log, state);
  t.match(again, /"n":1\}.*\n?.*"n":2/s, 'whole lines from the start');
});

t.test('a save that failed (the disk full for a while) does not stop the later saves', async (t) => {
  const { CheckpointStore } = await import('../../src/state/checkpoints.js');
  const { RecordingLog } = await import('../helpers/tail-harness.js');
  const state = t.testdir({ 'checkpoints.json.tmp': { blocker: 'a folder where the temp file goes: the write fails' } });
  const store = await CheckpointStore.open(state, new RecordingLog().logger);
  const id = { dev: 1, ino: 2, fpLen: 0, fp: '' };
  store.commit('/x/audit.log', id, 10);
  await t.rejects(store.save(), 'the first save fails');
  rmSync(join(state, 'checkpoints.json.tmp'), { recursive: true });
  store.commit('/x/audit.log', id, 20);
  await store.save();
  t.same(JSON.parse(readFileSync(join(state, 'checkpoints.json'), 'utf8')).files.map((f: { offset: number }) => f.offset), [20], 'a later save writes the file');
  await store.close();
});
