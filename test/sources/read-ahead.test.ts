import t from 'tap';
import { open, appendFile } from 'node:fs/promises';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { ReadAhead } from '../../src/sources/file/read-ahead.js';

function content(n: number): Buffer {
  const b = Buffer.allocUnsafe(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

t.test('reading a file chunk by chunk gives its bytes in order, with reads ahead', async (t) => {
  const dir = t.testdir({});
  const path = join(dir, 'f');
  const want = content(10 * 4096 + 123);
  writeFileSync(path, want);
  const fh = await open(path, 'r');
  t.teardown(() => fh.close());
  const reads = new ReadAhead(4096);
  const got: Buffer[] = [];
  let pos = 0;
  for (;;) {
    const data = await reads.read(fh, pos);
    if (data.length === 0) break;
    got.push(Buffer.from(data)); // the view is only valid until the next read
    pos += data.length;
  }
  t.ok(Buffer.concat(got).equals(want));
  await appendFile(path, 'more\n');
  t.equal((await reads.read(fh, pos)).toString(), 'more\n', 'growth after the end is seen');
});

t.test('a read elsewhere than the read ahead (truncation, another file) gets the right bytes', async (t) => {
  const dir = t.testdir({ a: 'a'.repeat(300), b: 'b'.repeat(300) });
  const a = await open(join(dir, 'a'), 'r');
  const b = await open(join(dir, 'b'), 'r');
  t.teardown(async () => {
    await a.close();
    await b.close();
  });
  const reads = new ReadAhead(100);
  t.equal((await reads.read(a, 0)).toString(), 'a'.repeat(100));
  t.equal((await reads.read(a, 250)).toString(), 'a'.repeat(50), 'another position');
  t.equal((await reads.read(a, 0)).toString(), 'a'.repeat(100));
  t.equal((await reads.read(b, 100)).toString(), 'b'.repeat(100), 'another file');
  await reads.settle();
  t.equal((await reads.read(b, 200)).toString(), 'b'.repeat(100), 'after settle');
});

t.test('settle waits for the read ahead, so the file can be closed; later reads on it fail', async (t) => {
  const dir = t.testdir({ a: 'x'.repeat(200) });
  const fh = await open(join(dir, 'a'), 'r');
  const reads = new ReadAhead(100);
  t.equal((await reads.read(fh, 0)).length, 100);
  // The read ahead of bytes 100..200 is in flight.
  await reads.settle();
  await fh.close();
  await t.rejects(reads.read(fh, 100), 'a read on a closed handle fails');
});

t.test('a file that is only followed (short reads) never takes a second buffer', async (t) => {
  const dir = t.testdir({ a: '' });
  const path = join(dir, 'a');
  const fh = await open(path, 'r');
  t.teardown(() => fh.close());
  const reads = new ReadAhead(1024);
  const seen = new Set<ArrayBufferLike>();
  let pos = 0;
  for (let i = 0; i < 5; i++) {
    await appendFile(path, `line ${i}\n`);
    const data = await reads.read(fh, pos);
    t.equal(data.toString(), `line ${i}\n`);
    pos += data.length;
    seen.add(data.buffer);
  }
  t.equal(seen.size, 1, 'one buffer');
});
