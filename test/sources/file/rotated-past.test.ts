import t from 'tap';
import { open } from 'node:fs/promises';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { SeenFiles } from '../../../src/sources/file/seen-files.js';
import { identifyWithHead } from '../../../src/state/file-identity.js';

const lines = (from: number, n: number) => Array.from({ length: n }, (_, i) => `{"seq":${from + i},"kind":"Event","apiVersion":"audit.k8s.io/v1","stage":"ResponseComplete"}\n`).join('');

t.test('the file just opened at the path, renamed before the look for skipped backups, is read as rotated past us', async (t) => {
  // A writer that rotates logrotate-style (audit.log -> .1, .1 -> .2) while the reader is behind:
  // the reader opens the path while it holds C, and the writer renames C to .1 and starts D before
  // the reader lists the backups. B (.2) and C (.1) were both rotated past it.
  const dir = t.testdir({});
  const path = join(dir, 'audit.log');
  writeFileSync(join(dir, 'audit.log.2'), lines(8000, 50)); // B
  writeFileSync(path, lines(16000, 50)); // C, live
  const fh = await open(path, 'r');
  t.teardown(() => fh.close());
  const { id, head } = await identifyWithHead(fh);
  renameSync(path, join(dir, 'audit.log.1'));
  writeFileSync(path, lines(24000, 50)); // D
  const seen = new SeenFiles(path);
  const skipped = await seen.rotatedPast([], { dev: id.dev, ino: id.ino, head });
  t.same(skipped.map((u) => u.path).sort(), [join(dir, 'audit.log.1'), join(dir, 'audit.log.2')], 'B and C, each from its start');
  t.ok(skipped.every((u) => u.offset === 0));
});

t.test("a backup on another inode that begins like the live file is logrotate's copy of it, not rotated past", async (t) => {
  // copytruncate: .1 is a new file with the live file's bytes; the live file is read, its copy is not.
  const dir = t.testdir({});
  const path = join(dir, 'audit.log');
  writeFileSync(path, lines(0, 50));
  writeFileSync(join(dir, 'audit.log.1'), lines(0, 50));
  const fh = await open(path, 'r');
  t.teardown(() => fh.close());
  const { id, head } = await identifyWithHead(fh);
  const seen = new SeenFiles(path);
  t.same(await seen.rotatedPast([], { dev: id.dev, ino: id.ino, head }), [], 'nothing to read first');
});
