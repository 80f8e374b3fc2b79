import t from 'tap';
import { closeSync, copyFileSync, openSync, readFileSync, truncateSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join } from 'node:path';
import { TestDrain } from '../helpers/drain.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';

/**
 * The stemcell's logrotate (copytruncate, compress) over kube-apiserver's lumberjack, which writes
 * without O_APPEND at its own position: after each truncation the file begins with a hole of NUL
 * bytes. NULs are never sent nor glued to a line, the copies (.1, then .1.gz) are never sent a second
 * time, no line is lost.
 */

const lines = numberedAuditLines(4000);

/** lumberjack's file: opened with O_TRUNC, no O_APPEND; every write at its own position. */
class Lumberjack {
  private fd: number;
  private pos = 0;
  next = 0;
  constructor(readonly path: string) {
    this.fd = openSync(path, 'w');
  }
  write(n: number): void {
    const buf = Buffer.from(lines.slice(this.next, this.next + n).join('\n') + '\n');
    writeSync(this.fd, buf, 0, buf.length, this.pos);
    this.pos += buf.length;
    this.next += n;
  }
  close(): void {
    closeSync(this.fd);
  }
}

/** logrotate copytruncate + compress: .1.gz shifted to .2.gz, copy to .1, truncate; .1 gzipped later. */
function logrotate(path: string, round: number): void {
  for (let n = round; n >= 1; n--) {
    try {
      writeFileSync(`${path}.${n + 1}.gz`, readFileSync(`${path}.${n}.gz`));
      unlinkSync(`${path}.${n}.gz`);
    } catch {}
  }
  copyFileSync(path, `${path}.1`);
  truncateSync(path, 0);
}
function compress(path: string): void {
  writeFileSync(`${path}.1.gz`, gzipSync(readFileSync(`${path}.1`)));
  unlinkSync(`${path}.1`);
}

t.test('copytruncate under a writer without O_APPEND, three times, caught up and behind', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
  const file = join(dir, 'kube-apiserver', 'audit.log');
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  const lj = new Lumberjack(file);
  t.teardown(() => lj.close());
  lj.write(500);
  const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), '--poll-interval', '100ms']);
  await drain.waitFor(500);
  for (let round = 1; round <= 3; round++) {
    // Lines the reader may or may not have read when the copy is taken.
    lj.write(300);
    logrotate(file, round);
    lj.write(200);
    await drain.waitFor(lj.next);
    compress(file);
  }
  lj.write(100);
  await drain.waitFor(lj.next);
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0);
  const msgs = drain.messages.map((m) => parseRfc5424(m).msg);
  t.equal(msgs.filter((m) => m.includes(0)).length, 0, 'no message holds a NUL byte');
  t.equal(msgs.filter((m) => m.length === 0).length, 0, 'no empty message');
  const seqs = msgs.map((m) => seqOf(m.toString()));
  t.same(seqs, Array.from({ length: lj.next }, (_, i) => i), 'every line once, in order', { stderr: run.stderr() });
  t.match(run.stderr(), /skipping NUL bytes/, 'the hole is logged');
  t.equal(run.stderr().match(/skipping NUL bytes/g)?.length, 1, 'logged once');
});
