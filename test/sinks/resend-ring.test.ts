import t from 'tap';
import { fstatSync, readdirSync } from 'node:fs';
import { FileRing, nodeRingIo, type RingFileIo } from '../../src/sinks/resend-ring.js';
import { fileStore, ResendWindow } from '../../src/sinks/resend-window.js';
import { taken } from '../helpers/resend.js';

const frame = (msg: string) => Buffer.from(`${Buffer.byteLength(msg)} ${msg}`);
const replayed = (w: ResendWindow) => (taken(w) ?? []).map((c) => c.frames.toString()).join('');
const errno = (code: string) => Object.assign(new Error(code), { code });

/** nodeRingIo with a hook before each write and read; records the files made and closed. */
function io(hooks: { write?: (length: number) => number | void; read?: () => void } = {}) {
  const made: number[] = [];
  const closed: number[] = [];
  const wrapped: RingFileIo = {
    ...nodeRingIo,
    create: (path) => {
      const fd = nodeRingIo.create(path);
      made.push(fd);
      return fd;
    },
    write: (fd, buf, offset, length, position) => {
      // A number: a short write of at most that many bytes.
      const most = hooks.write?.(length);
      return nodeRingIo.write(fd, buf, offset, typeof most === 'number' ? Math.min(most, length) : length, position);
    },
    read: (fd, buf, offset, length, position) => {
      hooks.read?.();
      return nodeRingIo.read(fd, buf, offset, length, position);
    },
    close: (fd) => {
      closed.push(fd);
      nodeRingIo.close(fd);
    },
  };
  return { io: wrapped, made, closed };
}

t.test('the file is only its owner\'s, gone from the folder at once, grows as the window fills, closed with the window', async (t) => {
  const dir = t.testdir();
  const files = io();
  const failures: unknown[] = [];
  const w = new ResendWindow(3000, undefined, fileStore(dir, (err) => failures.push(err), files.io));
  w.record(frame('a'), 1);
  t.equal(files.made.length, 1, 'made at the first batch');
  const st = fstatSync(files.made[0]);
  t.equal(st.mode & 0o777, 0o600);
  t.equal(st.nlink, 0, 'unlinked');
  t.equal(st.size, 3, 'as long as what was written: the first batch does not wait for the window\'s size to be written');
  t.same(readdirSync(dir), [], 'nothing in the folder: a crash leaves nothing behind');
  w.lost();
  t.equal(replayed(w), '1 a');
  w.close();
  t.same(files.closed, files.made);
  t.same(failures, []);
});

t.test('a disk that fills under the file (a short write, then ENOSPC): the window moves to memory, nothing lost, said once', async (t) => {
  const dir = t.testdir();
  let room = 2048;
  const files = io({
    write: (n) => {
      if (room === 0) throw errno('ENOSPC');
      const took = Math.min(n, room);
      room -= took;
      return took;
    },
  });
  const failures: Array<[string, boolean]> = [];
  const w = new ResendWindow(1 << 20, undefined, fileStore(dir, (err, kept) => failures.push([(err as NodeJS.ErrnoException).code!, kept]), files.io));
  const sent: string[] = [];
  for (let i = 0; i < 100; i++) {
    const m = `message ${String(i).padStart(3, '0')} ${'x'.repeat(40)}`;
    sent.push(frame(m).toString());
    w.record(frame(m), 1);
  }
  t.same(failures, [['ENOSPC', true]], 'said once, what it held kept');
  t.same(files.closed, files.made, 'the file is closed: its space is freed');
  t.same(readdirSync(dir), []);
  w.lost();
  t.equal(replayed(w), sent.join(''), 'every frame, in order, across the move');
});

t.test('a write that fails later (a full disk, EIO): what the window held is read back into memory and kept', async (t) => {
  const dir = t.testdir();
  let failAfter = Infinity;
  const files = io({ write: () => {
    if (failAfter-- <= 0) throw errno('EIO');
  } });
  const failures: Array<[string, boolean]> = [];
  const w = new ResendWindow(100, undefined, fileStore(dir, (err, kept) => failures.push([(err as NodeJS.ErrnoException).code!, kept]), files.io));
  const sent: string[] = [];
  for (let i = 0; i < 30; i++) {
    if (i === 12) failAfter = 0;
    const m = `msg ${String(i).padStart(2, '0')}`;
    sent.push(frame(m).toString());
    w.record(frame(m), 1);
  }
  t.same(failures, [['EIO', true]], 'said once');
  t.same(files.closed, files.made);
  w.lost();
  const text = replayed(w);
  t.ok(text.length > 50, 'the window is still about full');
  t.equal(text, sent.join('').slice(-text.length), 'the newest frames, whole and in order, across the move to memory');
});

t.test('a write that takes no bytes (and gives no error) moves the window to memory, it does not loop', async (t) => {
  const dir = t.testdir();
  let takeNone = false;
  const files = io({ write: () => (takeNone ? 0 : undefined) });
  const failures: Array<[string, boolean]> = [];
  const w = new ResendWindow(100, undefined, fileStore(dir, (err, kept) => failures.push([(err as NodeJS.ErrnoException).code!, kept]), files.io));
  w.record(frame('a'), 1);
  takeNone = true;
  w.record(frame('b'), 1);
  t.same(failures, [['EIO', true]], 'said once, as an I/O error');
  w.lost();
  t.equal(replayed(w), '1 a1 b', 'both kept, in order');
});

t.test('a file that can be neither written nor read back: what it held is dropped, not sent garbled; newer batches are kept', async (t) => {
  const dir = t.testdir();
  let broken = false;
  const files = io({
    write: () => {
      if (broken) throw errno('EIO');
    },
    read: () => {
      if (broken) throw errno('EIO');
    },
  });
  const failures: Array<[string, boolean]> = [];
  const w = new ResendWindow(1000, undefined, fileStore(dir, (err, kept) => failures.push([(err as NodeJS.ErrnoException).code!, kept]), files.io));
  w.record(frame('old 1'), 1);
  broken = true;
  w.record(frame('new 2'), 1);
  t.same(failures, [['EIO', false]]);
  t.equal(w.heldBytes, 7);
  w.lost();
  t.equal(replayed(w), '5 new 2');
});

t.test('a read that fails while trimming or replaying moves the window to memory too', async (t) => {
  const dir = t.testdir();
  let reads = 0;
  let failAt = -1;
  const files = io({ read: () => {
    if (reads++ === failAt) throw errno('EIO');
  } });
  const failures: Array<[string, boolean]> = [];
  const w = new ResendWindow(50, undefined, fileStore(dir, (err, kept) => failures.push([(err as NodeJS.ErrnoException).code!, kept]), files.io));
  // Two 21-byte frames in one batch, then a third: the trim reads the first one's header in the file.
  w.record(Buffer.concat([frame('first frame 000001'), frame('second frame 00002')]), 2);
  failAt = reads;
  w.record(frame('third frame 000003'), 1);
  t.same(failures, [['EIO', true]], 'the failed header read: read back on the next try, kept');
  w.lost();
  t.equal(replayed(w), '18 second frame 0000218 third frame 000003');
});

t.test('FileRing on its own: bytes written anywhere are read back, frames walked by their headers', async (t) => {
  const dir = t.testdir();
  const ring = new FileRing(64, dir);
  ring.write(Buffer.from('3 abc5 hello'), 40);
  const into = Buffer.alloc(20);
  ring.copyInto(40, 12, into);
  t.equal(into.subarray(0, 12).toString(), '3 abc5 hello');
  t.equal(ring.frameEnd(40), 45);
  t.equal(ring.frameEnd(45), 52);
  t.equal(ring.inMemory().buf.subarray(40, 52).toString(), '3 abc5 hello');
  ring.close();
});
