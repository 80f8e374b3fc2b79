import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN } from '../helpers/proc.js';

const UNIT = fileURLToPath(new URL('../../systemd/auditfwd.service', import.meta.url));
const hasAnalyze = spawnSync('systemd-analyze', ['--version'], { stdio: 'ignore' }).status === 0;
const skip = !hasAnalyze && 'systemd-analyze (Debian package systemd) is not installed';

/** The unit as installed, except that ExecStart points at this checkout (verify checks it exists). */
function installedCopy(dir: string): string {
  const path = join(dir, 'auditfwd.service');
  writeFileSync(path, readFileSync(UNIT, 'utf8').replace(/^ExecStart=auditfwd /m, `ExecStart=${BIN} `));
  return path;
}

t.test('ExecStart names auditfwd bare, so systemd finds it where npm install -g put it', { skip }, async (t) => {
  const text = readFileSync(UNIT, 'utf8');
  t.match(text, /^ExecStart=auditfwd --config /m, 'searched in /usr/local/bin and /usr/bin, not one fixed path');
  // systemd resolves the bare name through its search path: without auditfwd installed, that is all verify says.
  const dir = t.testdir({});
  writeFileSync(join(dir, 'auditfwd.service'), text);
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', join(dir, 'auditfwd.service')], { encoding: 'utf8' });
  const installed = ['/usr/local/bin/auditfwd', '/usr/bin/auditfwd'].some((p) => spawnSync('test', ['-x', p]).status === 0);
  if (installed) t.equal(r.stderr, '', 'the installed auditfwd is found');
  else t.match(r.stderr.trim(), /^auditfwd\.service: Command auditfwd is not executable: No such file or directory$/);
});

t.test('systemd-analyze verify: no errors, no warnings', { skip }, async (t) => {
  const dir = t.testdir({});
  const unit = installedCopy(dir);
  // verify exits 0 on unknown keys and bad values (it only warns): any output is a failure.
  const r = spawnSync('systemd-analyze', ['verify', '--man=no', unit], { encoding: 'utf8' });
  t.equal(r.status, 0, r.stderr);
  t.equal(r.stderr + r.stdout, '', 'nothing to say about the unit');

  // The check can fail: a typo in a key is reported.
  const broken = join(dir, 'broken.service');
  writeFileSync(broken, readFileSync(unit, 'utf8').replace('NoNewPrivileges=yes', 'NoNewPrivilege=yes'));
  const r2 = spawnSync('systemd-analyze', ['verify', '--man=no', broken], { encoding: 'utf8' });
  t.match(r2.stderr, /Unknown key 'NoNewPrivilege'/);
});

t.test('systemd-analyze security rates the sandbox OK or better', { skip }, async (t) => {
  const unit = installedCopy(t.testdir({}));
  const r = spawnSync('systemd-analyze', ['security', '--offline=true', '--no-pager', unit], { encoding: 'utf8' });
  const m = /Overall exposure level for auditfwd\.service: ([\d.]+) (\S+)/.exec(r.stdout);
  t.ok(m, r.stdout + r.stderr);
  // systemd's scale: ≤ 2.0 SAFE, ≤ 4.9 OK, then MEDIUM, EXPOSED, UNSAFE.
  t.ok(Number(m![1]) <= 3, `exposure ${m![1]} ${m![2]}`);
});
