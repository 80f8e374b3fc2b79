import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expand } from '../../../src/sources/file/paths.js';
import { isBackupOf, looksRotated } from '../../../src/sources/file/rotated.js';

// The names on a BOSH master: lumberjack's backups, and the stemcell logrotate's .N / .N.gz of the
// live file and of those backups (its glob */*.log matches the backups too).
const LIVE = 'audit.log';
const LUMBERJACK = 'audit-2026-11-30T10-00-00.000.log';
const NAMES = [LUMBERJACK, `${LUMBERJACK}.1`, `${LUMBERJACK}.1.gz`, `${LUMBERJACK}.gz`, `${LIVE}.1`, `${LIVE}.1.gz`, `${LIVE}.2.gz`];

t.test('every backup name looks rotated; only uncompressed backups of the live file continue it', async (t) => {
  for (const n of NAMES) t.ok(looksRotated(n), `${n} looks rotated`);
  t.notOk(looksRotated(LIVE));
  t.ok(isBackupOf(LIVE, LUMBERJACK), 'lumberjack backup: a continuation');
  t.ok(isBackupOf(LIVE, `${LIVE}.1`), 'logrotate .1: a continuation');
  // logrotate's copies of a lumberjack backup hold lines already read from the backup itself.
  for (const n of [`${LUMBERJACK}.1`, `${LUMBERJACK}.1.gz`, `${LIVE}.1.gz`]) t.notOk(isBackupOf(LIVE, n), `${n} is not read as a continuation`);
});

t.test('a glob over the folder follows the live file only', async (t) => {
  const dir = t.testdir({ 'kube-apiserver': {} });
  for (const n of [LIVE, ...NAMES]) writeFileSync(join(dir, 'kube-apiserver', n), 'x\n');
  t.same(await expand(join(dir, '*', '*.log')), [join(dir, 'kube-apiserver', LIVE)]);
  t.same(await expand(join(dir, '*', '*')), [join(dir, 'kube-apiserver', LIVE)]);
});
