import t from 'tap';
import { once } from 'node:events';
import { appendFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { runAuditfwd } from '../helpers/proc.js';
import { numberedAuditLines, seqOf } from '../helpers/fixtures.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';

/**
 * The built binary, a drain slower than the file is read (docs/delivery.md, "A drain slower than
 * reading, catching up"): a backlog is paced by the drain, not written to the spill; a writer that
 * gets further ahead of the drain has the spill take over. The kernel's socket buffers hold several
 * MB between the two processes, so the volumes here are well past that.
 */

const LINES = numberedAuditLines(40_000);
const text = (from: number, to: number) => LINES.slice(from, to).join('\n') + '\n';
const upTo = (n: number) => Array.from({ length: n }, (_, i) => i);

/** A drain that reads at most `bytesPerSecond` (paused between 50 ms windows) until `unthrottle()`. */
async function slowDrain(t: Tap.Test, bytesPerSecond: number) {
  let throttled = true;
  let rest = Buffer.alloc(0);
  const seqs: number[] = [];
  let arrivals: Array<() => void> = [];
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    let windowStart = Date.now();
    let inWindow = 0;
    s.on('data', (d: Buffer) => {
      const split = splitOctetCounted(Buffer.concat([rest, d]));
      for (const f of split.frames) seqs.push(seqOf(parseRfc5424(f).msg.toString()));
      rest = Buffer.from(split.rest);
      const woken = arrivals;
      arrivals = [];
      for (const w of woken) w();
      inWindow += d.length;
      if (throttled && inWindow >= bytesPerSecond / 20) {
        s.pause();
        setTimeout(() => {
          windowStart = Date.now();
          inWindow = 0;
          s.resume();
        }, Math.max(0, windowStart + 50 - Date.now()));
      }
    });
    s.on('close', () => sockets.delete(s));
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  return {
    address: `127.0.0.1:${(server.address() as { port: number }).port}`,
    /** The sequence numbers of the lines received so far, in order. */
    seqs,
    unthrottle: () => {
      throttled = false;
      for (const s of sockets) s.resume();
    },
    /** Resolves once `n` lines have arrived. */
    waitForLines: async (n: number) => {
      while (seqs.length < n) await new Promise<void>((resolve) => arrivals.push(resolve));
    },
  };
}

/**
 * A folder of the test's own, new each run, removed last (teardowns run last-in, first-out). Not
 * tap's fixture folder, whose path is the same every run: an auditfwd left running by an earlier
 * run that timed out once kept writing there, and its removal failed (ENOTEMPTY).
 */
function folder(t: Tap.Test, log = ''): string {
  const dir = mkdtempSync(join(tmpdir(), 'auditfwd-pacing-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(join(dir, 'logs'));
  writeFileSync(join(dir, 'logs', 'audit.log'), log);
  return dir;
}

const common = (dir: string, address: string) => ['--to', address, '--state-dir', join(dir, 'state'), '--log-level', 'info'];

t.test('a backlog sent to a drain slower than reading: paced by the drain, nothing spilled, every line in order', async (t) => {
  const N = 20_000; // about 26 MB
  const dir = folder(t, text(0, N));
  const drain = await slowDrain(t, 16_000_000);
  const run = runAuditfwd(t, [...common(dir, drain.address), '--file', join(dir, 'logs', 'audit.log')]);
  await drain.waitForLines(N);
  t.same(drain.seqs, upTo(N), 'every line, once, in order');
  t.notMatch(run.stderr(), /spilling to disk/, 'the backlog was not written to the spill');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'SIGTERM: clean exit');
});

t.test('a writer further and further ahead of the drain: the spill takes over, every line in order', async (t) => {
  const dir = folder(t);
  const file = join(dir, 'logs', 'audit.log');
  // The drain takes 2 MB/s; the writer appends about 10 MB/s until the spill starts.
  const drain = await slowDrain(t, 2_000_000);
  const run = runAuditfwd(t, [...common(dir, drain.address), '--file', file]);
  await run.waitForLog(/following file/);
  let written = 0;
  const writer = setInterval(() => {
    if (written >= LINES.length) return;
    appendFileSync(file, text(written, written + 800));
    written += 800;
  }, 100);
  t.teardown(() => clearInterval(writer));
  await run.waitForLog(/spilling to disk/);
  clearInterval(writer);
  t.ok(written < LINES.length, `spilled while the writer was ahead (${written} lines written, ${drain.seqs.length} received)`);
  drain.unthrottle();
  await drain.waitForLines(written);
  t.same(drain.seqs, upTo(written), 'every line, once, in order');
  run.child.kill('SIGTERM');
  t.equal(await run.exited, 0, 'SIGTERM: clean exit');
});
