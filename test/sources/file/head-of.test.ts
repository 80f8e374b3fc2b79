import t from 'tap';
import { renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { headOf, openFound } from '../../../src/sources/file/rotated.js';
import { openRegular } from '../../../src/sources/file/open-regular.js';

/**
 * logrotate shifts `.2` to `.3` and `.1` to `.2` while auditfwd lists the folder: a file listed on
 * one inode must not take the first bytes of the file that holds its name a moment later. It did, and
 * the file, opened by its inode under its new name, no longer began with "its" bytes: reported as
 * deleted before it was read (a gap record for lines that were read; soak, RELP runs).
 */
t.test('the first bytes are those of the file listed, or none when the name holds another one now', async (t) => {
  const dir = t.testdir({ 'audit.log.2': 'older lines\n'.repeat(20), 'audit.log.1': 'newer lines\n'.repeat(20) });
  const two = join(dir, 'audit.log.2');
  const listed = statSync(two);
  t.ok(await headOf(two, listed), 'the file listed there');
  // The shift, between the listing and the read.
  renameSync(two, join(dir, 'audit.log.3'));
  renameSync(join(dir, 'audit.log.1'), two);
  t.equal(await headOf(two, listed), undefined, 'another file holds the name now: no bytes for it');
  t.ok(await headOf(two), 'without an inode to check, whatever is there');

  // Known by its inode alone, the listed file is found under its new name.
  const u = { path: two, offset: 0, mtimeMs: listed.mtimeMs, size: listed.size, dev: listed.dev, ino: listed.ino, ...(await headOf(two, listed)) };
  const found = await openFound(join(dir, 'audit.log'), u, openRegular);
  t.equal(found?.path, join(dir, 'audit.log.3'), 'opened where the rename put it');
  await found?.fh.close();
});
