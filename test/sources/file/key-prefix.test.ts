import t from 'tap';
import { createHash } from 'node:crypto';
import { extendIdentity, keyPrefix, type Reader } from '../../../src/sources/file/reader.js';

// Only what keyPrefix and extendIdentity read of a Reader.
const reader = (dev: number, ino: number): Reader => ({ id: { dev, ino, fpLen: 0, fp: '' }, head: Buffer.alloc(0) }) as unknown as Reader;
const hashed = (text: string) => createHash('sha256').update(text).digest('base64url').slice(0, 16);

/** The key prefix (NATS's Nats-Msg-Id) follows the file's head (the first line, once whole), device and inode. */
t.test('the key prefix follows the first line as it is read, and the file', async (t) => {
  const r = reader(1, 42);
  extendIdentity(r, 0, Buffer.from('{"first":'));
  t.equal(keyPrefix(r), `1:42:${hashed('{"first":')}:`, 'the first line so far');
  t.equal(keyPrefix(r), `1:42:${hashed('{"first":')}:`, 'asked again, the same');
  extendIdentity(r, 9, Buffer.from('1}\n{"second":2}\n'));
  t.equal(keyPrefix(r), `1:42:${hashed('{"first":1}')}:`, 'the whole first line once it is read');
  r.id = { ...r.id, ino: 43 };
  t.equal(keyPrefix(r), `1:43:${hashed('{"first":1}')}:`, 'another inode, another prefix');
  const other = reader(1, 43);
  extendIdentity(other, 0, Buffer.from('{"other":1}\n'));
  t.equal(keyPrefix(other), `1:43:${hashed('{"other":1}')}:`, 'another reader on a reused inode: its own first line');
});
