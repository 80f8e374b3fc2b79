import t from 'tap';
import { appendFileSync, readFileSync, renameSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { TestDrain } from '../helpers/drain.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';

/**
 * kube-apiserver with --audit-log-compress: a backup auditfwd had not finished (or never saw) exists
 * only as audit-<time>.log.gz by the time auditfwd looks. The real process reads the rest from it.
 */

const FAST = ['--poll-interval', '100ms', '--rotate-wait', '300ms'];
const lines = numberedAuditLines(3000);
const text = (from: number, to: number) => lines.slice(from, to).join('\n') + '\n';
const seqs = (drain: TestDrain) => drain.messages.map((m) => seqOf(parseRfc5424(m).msg.toString()));
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

let n = 0;
/** lumberjack's rotation, then its mill: gzip straight into <backup>.gz, delete the backup. */
function rotateAndCompress(file: string): void {
  const backup = join(file, '..', `audit-2026-11-30T12-00-0${n++}.000.log`);
  renameSync(file, backup);
  writeFileSync(`${backup}.gz`, gzipSync(readFileSync(backup)));
  unlinkSync(backup);
}

async function setup(t: Tap.Test) {
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  return { file: join(dir, 'kube-apiserver', 'audit.log'), state: join(dir, 'state'), drain };
}

t.test('stopped while kube-apiserver rotated and compressed twice: every line exactly once', async (t) => {
  const { file, state, drain } = await setup(t);
  writeFileSync(file, text(0, 500));
  const args = ['--file', file, '--to', drain.address, '--state-dir', state, ...FAST];
  const first = runAuditfwd(t, args);
  await drain.waitFor(500);
  first.child.kill('SIGTERM');
  t.equal(await first.exited, 0);
  // While stopped: the rest of the file it was reading, then a whole file it never saw, both only as .gz.
  appendFileSync(file, text(500, 800));
  rotateAndCompress(file);
  await new Promise((r) => setTimeout(r, 20)); // file times order the backups (a clock tick apart)
  writeFileSync(file, text(800, 1200));
  rotateAndCompress(file);
  writeFileSync(file, text(1200, 1300));
  const second = runAuditfwd(t, args);
  await drain.waitFor(1300);
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
  t.same(seqs(drain), upTo(1300), 'every line once, in order', { stderr: second.stderr() });
  t.match(second.stderr(), /reading gzipped backup/);
});

t.test('the drain paused while a backup is rotated and compressed under a reader that is behind: every line exactly once', async (t) => {
  const { file, state, drain } = await setup(t);
  writeFileSync(file, text(0, 200));
  const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', state, '--memory-max-bytes', '64KiB', ...FAST]);
  await drain.waitFor(200);
  drain.pause();
  // Far more than the socket buffers and 64 KiB of memory hold: the reader blocks inside this file.
  appendFileSync(file, text(200, 2000));
  renameSync(file, join(file, '..', 'audit-2026-11-30T13-00-00.000.log'));
  writeFileSync(file, text(2000, 2600));
  rotateAndCompress(file);
  writeFileSync(file, text(2600, 3000));
  drain.resume();
  await drain.waitFor(3000);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  t.same(seqs(drain), upTo(3000), 'every line once, in order', { stderr: run.stderr() });
  t.match(run.stderr(), /reading gzipped backup/, 'the file in between was read from its .gz');
});
