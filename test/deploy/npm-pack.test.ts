import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from '../helpers/proc.js';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;

function npm(args: string[], cwd: string) {
  // dist/ is already built (npm test runs tsc first): --ignore-scripts skips a second build.
  return spawnSync('npm', [...args, '--ignore-scripts', '--no-audit', '--no-fund', '--loglevel=error'], { cwd, encoding: 'utf8', env: cleanEnv() });
}

t.test('npm pack makes a package whose auditfwd command works after npm install -g', async (t) => {
  const dir = t.testdir({});
  const pack = npm(['pack', '--json', '--pack-destination', dir], ROOT);
  t.equal(pack.status, 0, pack.stderr);
  const [info] = JSON.parse(pack.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const files = info.files.map((f) => f.path);
  t.ok(files.includes('bin/auditfwd') && files.includes('dist/cli.js') && files.includes('README.md') && files.includes('docs/ARCHITECTURE.md'), 'the command, the build, the README and docs');
  t.notOk(files.some((f) => /^(src|test|bosh|\.ci)\//.test(f)), 'no sources, tests or deployment files');

  // Offline: the dependencies come from npm's cache, which `npm ci` filled.
  const prefix = join(dir, 'prefix');
  const install = npm(['install', '-g', '--offline', '--prefix', prefix, join(dir, info.filename)], dir);
  if (install.status !== 0 && /ENOTCACHED/.test(install.stderr)) {
    t.skip(`offline install impossible here (a dependency is not in the npm cache: run npm ci first): ${install.stderr.split('\n')[0]}`);
    return;
  }
  t.equal(install.status, 0, install.stderr);
  const bin = join(prefix, 'bin', 'auditfwd');
  const version = spawnSync(bin, ['--version'], { encoding: 'utf8', env: cleanEnv() });
  t.equal(version.stdout.trim(), VERSION, version.stderr);
  // Every dependency loads: a config file (yaml) and a line through the whole pipeline.
  const cfg = join(dir, 'c.yml');
  const run = spawnSync('sh', ['-c', `echo 'to: "-"' > ${cfg} && echo hello | ${bin} --config ${cfg} --hostname h --app-name a`], { encoding: 'utf8', env: cleanEnv() });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /^\d+ <14>1 \S+ h a - - - hello$/);
});
