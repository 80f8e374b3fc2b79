import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { TestDrain } from '../helpers/drain.js';
import { k8sAuditPath } from '../helpers/fixtures.js';
import { BIN, cleanEnv } from '../helpers/proc.js';

/**
 * The unit's SystemCallFilter= is an allow-list: a system call outside it kills the process. This
 * builds the same list systemd builds and runs the real binary, on the Node running this suite
 * (CI runs the suite on every supported Node), forwarding a file under it.
 */
const UNIT = fileURLToPath(new URL('../../systemd/auditfwd.service', import.meta.url));
const HELPER = fileURLToPath(new URL('../helpers/seccomp-exec.py', import.meta.url));
const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
const hasSeccomp = spawnSync('/usr/bin/python3', ['-c', 'import seccomp'], { stdio: 'ignore' }).status === 0;
const skip = !hasAnalyze ? 'systemd-analyze (Debian package systemd) is not installed' : !hasSeccomp ? 'python3-seccomp (Debian package) is not installed' : false;
if (skip) console.error(`# SKIP systemd seccomp filter test: ${skip}`);

/** One group (recursively) or one system call name, as `systemd-analyze syscall-filter` lists it. */
function expand(entry: string, seen = new Set<string>()): string[] {
  if (!entry.startsWith('@')) return [entry];
  if (seen.has(entry)) return [];
  seen.add(entry);
  const r = spawnSync('systemd-analyze', ['syscall-filter', '--no-pager', entry], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`systemd-analyze syscall-filter ${entry}: ${r.stderr}`);
  const names = r.stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  return names.flatMap((n) => expand(n, seen));
}

/** The allow-list systemd compiles from the unit: its SystemCallFilter= lines in order, @default implied. */
function unitAllowList(unitText: string): Set<string> {
  const lines = [...unitText.matchAll(/^SystemCallFilter=(.*)$/gm)].map((m) => m[1].trim());
  if (lines.length === 0 || lines[0].startsWith('~')) throw new Error('the unit has no allow-list SystemCallFilter=');
  // systemd: an allow-list always permits @default (systemd.exec(5), SystemCallFilter=).
  const allowed = new Set(expand('@default'));
  for (const line of lines) {
    const deny = line.startsWith('~');
    for (const entry of line.replace(/^~/, '').split(/\s+/).filter(Boolean)) {
      for (const name of expand(entry.replace(/:.*$/, ''))) deny ? allowed.delete(name) : allowed.add(name);
    }
  }
  return allowed;
}

async function forwardUnder(t: Tap.Test, allowed: Set<string>): Promise<{ exit: number | string; stderr: string; received: number; lines: number }> {
  const dir = t.testdir({});
  const allowFile = join(dir, 'allowed');
  writeFileSync(allowFile, [...allowed].sort().join('\n') + '\n');
  const log = k8sAuditPath('falcosecurity-falco.jsonl');
  const lines = readFileSync(log, 'utf8').split('\n').filter(Boolean).length;
  const drain = await TestDrain.start();
  t.teardown(() => drain.close());
  // As an installed binary runs: its #! line finds node on PATH, here the Node running this suite.
  const args = [allowFile, '--', BIN];
  args.push('--file', log, '--to', drain.address, '--once', '--state-dir', join(dir, 'state'), '--log-format', 'json');
  // `env -u NODE_OPTIONS`: the test runner injects its loaders into every child (see helpers/proc.ts).
  const child = spawn('env', ['-u', 'NODE_OPTIONS', '/usr/bin/python3', HELPER, ...args], { stdio: ['ignore', 'ignore', 'pipe'], env: cleanEnv({ PATH: `${dirname(process.execPath)}:${process.env.PATH}` }) });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  const [code, signal] = (await once(child, 'exit')) as [number | null, string | null];
  return { exit: code ?? signal!, stderr, received: drain.messages.length, lines };
}

t.test(`the unit's system call filter lets Node ${process.version} forward a file`, { skip }, async (t) => {
  const allowed = unitAllowList(readFileSync(UNIT, 'utf8'));
  const r = await forwardUnder(t, allowed);
  t.equal(r.exit, 0, `exit 0 under the filter (SIGSYS means a system call outside it)\n${r.stderr}`);
  t.equal(r.received, r.lines, 'every line reached the drain');
});

t.test('the filter is enforced: without openat the same run is killed', { skip }, async (t) => {
  const allowed = unitAllowList(readFileSync(UNIT, 'utf8'));
  allowed.delete('openat');
  allowed.delete('open');
  const r = await forwardUnder(t, allowed);
  t.equal(r.exit, 'SIGSYS');
  t.equal(r.received, 0);
});

t.test('the allow-list is read the way systemd reads it', { skip }, async (t) => {
  const allowed = unitAllowList('SystemCallFilter=@pkey\nSystemCallFilter=~pkey_free\n');
  t.ok(allowed.has('pkey_alloc'), 'a named group is expanded');
  t.notOk(allowed.has('pkey_free'), 'a later ~ line removes');
  t.ok(allowed.has('exit_group'), '@default is implied');
});
