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
  t.ok(files.includes('bin/auditfwd') && files.includes('dist/auditfwd.js') && files.includes('README.md') && files.includes('docs/ARCHITECTURE.md'), 'the command, the build, the README and docs');
  t.notOk(files.some((f) => /^(src|test|bosh|\.ci)\//.test(f)), 'no sources, tests or deployment files');
  t.ok(files.includes('LICENSE'), 'the licence text');
  t.match(readFileSync(join(ROOT, 'LICENSE'), 'utf8'), /Apache License\s+Version 2\.0/, 'the licence package.json names');
  t.equal((JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { license: string }).license, 'Apache-2.0');
  t.strictSame(files.filter((f) => f.endsWith('.map')), [], 'no source maps: the sources they point to are not shipped');

  // From npm's cache where it can (npm ci filled it with the tarballs, not always with the metadata
  // an install without a lock file needs); else from the registry, as a user's install would.
  const prefix = join(dir, 'prefix');
  let install = npm(['install', '-g', '--offline', '--prefix', prefix, join(dir, info.filename)], dir);
  if (install.status !== 0 && /ENOTCACHED/.test(install.stderr)) install = npm(['install', '-g', '--prefer-offline', '--prefix', prefix, join(dir, info.filename)], dir);
  if (install.status !== 0 && /ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ETIMEDOUT|ENETUNREACH/.test(install.stderr)) {
    t.skip(`install impossible here (not in the npm cache, and no registry): ${install.stderr.split('\n')[0]}`);
    return;
  }
  t.equal(install.status, 0, install.stderr);
  const bin = join(prefix, 'bin', 'auditfwd');
  // `env -u NODE_OPTIONS`: the test runner re-adds its loaders to a child's environment (Node 26 cannot load auditfwd with them).
  const version = spawnSync('env', ['-u', 'NODE_OPTIONS', bin, '--version'], { encoding: 'utf8', env: cleanEnv() });
  t.equal(version.stdout.trim(), VERSION, version.stderr);
  // Every dependency loads: a config file (yaml) and a line through the whole pipeline.
  const cfg = join(dir, 'c.yml');
  const run = spawnSync('env', ['-u', 'NODE_OPTIONS', 'sh', '-c', `echo 'to: "-"' > ${cfg} && echo hello | ${bin} --config ${cfg} --hostname h --app-name a`], { encoding: 'utf8', env: cleanEnv() });
  t.equal(run.status, 0, run.stderr);
  t.match(run.stdout, /^\d+ <14>1 \S+ h a - - - hello$/);
});
