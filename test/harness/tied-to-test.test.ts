import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { existsSync, readFileSync } from 'node:fs';
import t from 'tap';
import { tiedToTest } from '../helpers/proc.js';

/** Whether `pid` has ended: gone, or a zombie not yet reaped by its new parent. */
function ended(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

/** Resolves true once `pid` has ended, false at the deadline (which only bounds a failure). */
async function endsWithin(pid: number, ms: number): Promise<boolean> {
  const deadline = Date.now() + ms;
  while (!ended(pid)) {
    if (Date.now() > deadline) return false;
    await new Promise((r) => setTimeout(r, 20));
  }
  return true;
}

/**
 * A stand-in for a test process: it starts `cmd args` (an idle node) and prints its pid; then it
 * is killed with SIGKILL, as tap kills a test file past its timeout. Returns the grandchild's pid.
 */
async function orphanOf(t: Tap.Test, cmd: [string, string[]]): Promise<number> {
  const script = `const c = require('node:child_process').spawn(...JSON.parse(process.argv[1]), { stdio: 'ignore' }); console.log(c.pid);`;
  const middle = spawn(process.execPath, ['-e', script, JSON.stringify(cmd)], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => void middle.kill('SIGKILL'));
  const [line] = (await once(middle.stdout!, 'data')) as [Buffer];
  const pid = Number(line.toString().trim());
  t.teardown(() => {
    if (!ended(pid)) process.kill(pid, 'SIGKILL');
  });
  middle.kill('SIGKILL');
  await once(middle, 'exit');
  return pid;
}

const idle: [string, string[]] = [process.execPath, ['-e', 'setInterval(() => {}, 1e9)']];

t.test('a child started for a test dies when the test process is killed', { skip: existsSync('/usr/bin/setpriv') ? false : 'util-linux setpriv is not installed' }, async (t) => {
  const pid = await orphanOf(t, tiedToTest(...idle));
  t.ok(await endsWithin(pid, 10_000), 'the child ended with its parent');
});

t.test('without it the child lives on (what the tie is for)', async (t) => {
  const pid = await orphanOf(t, idle);
  t.notOk(ended(pid), 'the child outlived its parent');
});
