import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeFileSync } from 'node:fs';
import { TestDrain } from '../helpers/drain.js';
import { runAuditfwd } from '../helpers/proc.js';
import { parseRfc5424 } from '../helpers/rfc5424.js';
import { seqOf } from '../helpers/fixtures.js';

/**
 * Rename rotation under load, against the built binary with its default flags: a writer in another
 * process writes 8,000-line batches of real audit lines as fast as it can and renames the file
 * logrotate-style (audit.log → audit.log.1, older backups shifted) three times, half of each batch
 * just before the rename. Two rotations can happen between two looks at the path: the file in the
 * middle (now audit.log.1) must be read too, before the new live file.
 */

const WRITER = fileURLToPath(new URL('../helpers/rotating-writer.mjs', import.meta.url));
const LINES = 32_000;

for (const pauseMs of [0, 300]) {
  t.test(`3 rename rotations of 8,000-line batches (pause ${pauseMs} ms between halves): every line once, in order`, async (t) => {
    const dir = t.testdir({ 'kube-apiserver': {}, state: {} });
    const file = join(dir, 'kube-apiserver', 'audit.log');
    const drain = await TestDrain.start();
    t.teardown(() => drain.close());
    writeFileSync(file, '');
    const run = runAuditfwd(t, ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state')]);
    await run.waitForLog(/following file/);
    const writer = spawn(process.execPath, [WRITER, file, '4', '8000', String(pauseMs)], { stdio: ['ignore', 'pipe', 'inherit'] });
    t.teardown(() => void writer.kill('SIGKILL'));
    const [code] = await once(writer, 'exit');
    t.equal(code, 0, 'writer finished');
    // Every line arrives before --rotate-wait (5 s) could release a file; the deadline only bounds a failure.
    const all = await Promise.race([drain.waitFor(LINES).then(() => true), new Promise<boolean>((r) => setTimeout(() => r(false), 60_000).unref())]);
    run.child.kill('SIGTERM');
    t.equal(await run.exited, 0);
    const got = drain.messages.map((m) => seqOf(parseRfc5424(m).msg.toString()));
    const seen = new Set(got);
    let lost = 0;
    for (let i = 0; i < LINES; i++) if (!seen.has(i)) lost++;
    t.ok(all, `all ${LINES} lines arrived`, { lost, stderr: all ? undefined : run.stderr().slice(-4000) });
    t.equal(lost, 0, 'nothing lost');
    t.equal(got.length, LINES, 'nothing repeated');
    t.ok(got.every((s, i) => i === 0 || s > got[i - 1]), 'in order: each rotated file before the next');
  });
}
