import t from 'tap';
import { once } from 'node:events';
import { connect, createServer, type TLSSocket } from 'node:tls';
import { MemoryBuffer } from '../../src/buffer/memory.js';
import { writeBatches } from '../../src/sinks/write-loop.js';
import { Stats } from '../../src/telemetry/stats.js';
import { hasOpenssl, TestPki } from '../helpers/certs.js';

// A TLS socket's write stays pending until its callback even when the kernel took every encrypted
// byte at once: the loop must look under the encryption to tell a socket with room from a backed-up
// one, or every TLS batch goes in pieces, each waiting for the one before.

const KiB = 1024;
const PIECE = 16 * KiB;

/** A batch of `size` bytes of octet frames' worth, marked every PIECE bytes. */
const marked = (size: number, onHandedOn: () => void) => ({
  frames: Buffer.alloc(size, 0x31),
  count: 1,
  onHandedOn,
  marks: { bytes: Array.from({ length: size / PIECE - 1 }, (_, i) => (i + 1) * PIECE), progress: () => {} },
});

if (!hasOpenssl()) {
  t.comment('SKIPPED: openssl is missing (Debian package openssl): these tests make their certificates with it');
  t.plan(0, 'openssl is missing (Debian package openssl)');
} else {
  const pki = new TestPki(t.testdir({}));
  const ca = pki.ca('ca');
  const server = pki.issue(ca, 'server');

  /** A TLS connection to a server that reads only once `reading` is called; each write's length is recorded. */
  const tlsPair = async (t: Tap.Test) => {
    let peer!: TLSSocket;
    const srv = createServer({ cert: server.certPem, key: server.keyPem }, (s) => {
      peer = s;
      s.pause();
      s.on('error', () => {});
    });
    srv.listen(0, '127.0.0.1');
    await once(srv, 'listening');
    const secured = once(srv, 'secureConnection');
    const sock = connect({ host: '127.0.0.1', servername: 'localhost', port: (srv.address() as { port: number }).port, ca: ca.certPem });
    await once(sock, 'secureConnect');
    await secured;
    t.teardown(() => {
      sock.destroy();
      peer.destroy();
      srv.close();
    });
    const writes: number[] = [];
    let wrote!: () => void;
    const firstWrite = new Promise<void>((resolve) => (wrote = resolve));
    const write = sock.write.bind(sock) as (data: Buffer, cb: (err?: Error | null) => void) => boolean;
    (sock as unknown as { write: typeof write }).write = (data, cb) => {
      writes.push(data.length);
      const ok = write(data, cb);
      wrote();
      return ok;
    };
    return { sock, writes, firstWrite, reading: () => peer.resume() };
  };

  t.test('TLS with room in the kernel: a marked batch goes whole', async (t) => {
    const { sock, writes, reading } = await tlsPair(t);
    reading();
    const buffer = new MemoryBuffer(64 << 20);
    // Unmarked first, so the second batch meets a socket whose last write the kernel took at once.
    await buffer.push({ frames: Buffer.alloc(64 * KiB, 0x31), count: 1 });
    let handedOn = false;
    await buffer.push(marked(64 * KiB, () => (handedOn = true)));
    buffer.close();
    await writeBatches(sock, buffer, 'octet', new Stats(), new Promise(() => {}), () => false, { careful: () => false });
    t.same(writes, [64 * KiB, 64 * KiB], 'two writes, each batch whole');
    t.ok(handedOn, 'handed on once written');
  });

  t.test('TLS backed up (the encrypted bytes wait in the TCP queue): a marked batch goes in pieces', async (t) => {
    const { sock, writes, firstWrite, reading } = await tlsPair(t);
    const buffer = new MemoryBuffer(64 << 20);
    // More than the kernel's buffers hold while the server does not read.
    await buffer.push({ frames: Buffer.alloc(24 << 20, 0x31), count: 1 });
    let handedOn = false;
    await buffer.push(marked(64 * KiB, () => (handedOn = true)));
    buffer.close();
    const loop = writeBatches(sock, buffer, 'octet', new Stats(), new Promise(() => {}), () => false, { careful: () => false });
    await firstWrite;
    const queued = (sock as unknown as { _handle: { _parent: { writeQueueSize: number } } })._handle._parent.writeQueueSize;
    t.ok(queued > 0, `the kernel left ${queued} encrypted bytes in the TCP queue`);
    reading();
    await loop;
    t.same(writes, [24 << 20, PIECE, PIECE, PIECE, PIECE], 'the marked batch went in its four pieces');
    t.ok(handedOn, 'handed on once written');
  });
}
