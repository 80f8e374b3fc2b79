import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// `npm run bench` leaves the checkout as it found it: its input goes to a temporary folder that is
// removed at the end, and the results file is written only with --write-results (not given here).
// A 1 MB run of the floor alone (cat to the bench's receiver): this checks the harness, it measures
// nothing.

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const RUN = fileURLToPath(new URL('../../bench/run.mjs', import.meta.url));
const tracked = ['README.md', 'bench/RESULTS.md'];
const digest = (path: string) => createHash('sha256').update(readFileSync(`${REPO}/${path}`)).digest('hex');

async function bench(tmp: string, extra: string[]): Promise<{ code: number | null; stderr: string }> {
  const child = spawn(process.execPath, [RUN, '--mb', '1', '--runs', '1', '--skip', 'follow,dead', '--only', '^floor', ...extra], {
    cwd: REPO,
    env: { ...process.env, BENCH_TMPDIR: tmp },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d) => (stderr += d));
  const [code] = await once(child, 'exit');
  return { code, stderr };
}

t.test('a bench run changes no file of the checkout and removes its temporary data', async (t) => {
  const tmp = t.testdir({});
  const before = tracked.map(digest);
  const hadOut = existsSync(`${REPO}/bench/out`);
  const r = await bench(tmp, []);
  t.equal(r.code, 0, `exit code (stderr: ${r.stderr.slice(-300)})`);
  t.match(r.stderr, /results not written/);
  t.match(r.stderr, /run 1\/1 floor/, 'the floor ran');
  t.same(tracked.map(digest), before, 'README.md and bench/RESULTS.md unchanged');
  t.equal(existsSync(`${REPO}/bench/out`), hadOut, 'no bench/out made');
  t.same(readdirSync(tmp), [], 'the temporary folder is gone');
});
