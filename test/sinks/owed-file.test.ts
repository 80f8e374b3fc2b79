import t from 'tap';
import { existsSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { OwedFile } from '../../src/sinks/owed-file.js';

const frame = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);

t.test('kept whole, replaced whole, removed when nothing is owed', async (t) => {
  const dir = t.testdir();
  const failures: unknown[] = [];
  const file = new OwedFile(join(dir, 'resend-owed'), (err) => failures.push(err));
  t.equal(file.read(), undefined, 'nothing yet');
  file.write([frame('<14>1 - - - - - - a'), frame('<14>1 - - - - - - bb')]);
  t.equal(statSync(join(dir, 'resend-owed')).mode & 0o777, 0o600);
  t.same(file.read(), { frames: Buffer.concat([frame('<14>1 - - - - - - a'), frame('<14>1 - - - - - - bb')]), count: 2 });
  file.write([frame('<14>1 - - - - - - c')]);
  t.same(file.read()?.count, 1, 'replaced, not appended');
  t.same(readdirSync(dir), ['resend-owed'], 'no temporary file left');
  file.write([]);
  t.notOk(existsSync(join(dir, 'resend-owed')), 'nothing owed: no file');
  file.write([]);
  t.same(failures, [], 'removing what is not there is no failure');
});

t.test('a file that ends inside a frame, or holds something else, gives its whole frames only', async (t) => {
  const a = frame('<14>1 - - - - - - one');
  const b = frame('<14>1 - - - - - - two');
  const dir = t.testdir();
  const path = join(dir, 'resend-owed');
  const readBack = (content: Buffer | string) => {
    writeFileSync(path, content);
    return new OwedFile(path, () => {}).read();
  };
  t.same(readBack(Buffer.concat([a, b.subarray(0, 5)])), { frames: a, count: 1 }, 'cut inside the second frame');
  t.same(readBack(Buffer.concat([a, Buffer.from('x y')])), { frames: a, count: 1 }, 'something else after the first');
  t.equal(readBack('99999999999 z'), undefined, 'a length of more than 10 digits is not one');
  t.equal(readBack('garbage'), undefined);
});

t.test('a folder it cannot write to is reported, not thrown', async (t) => {
  const failures: unknown[] = [];
  new OwedFile('/nonexistent-dir/resend-owed', (err) => failures.push(err)).write([frame('x')]);
  t.equal(failures.length, 1);
  t.equal((failures[0] as NodeJS.ErrnoException).code, 'ENOENT');
});
