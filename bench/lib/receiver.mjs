import { once } from 'node:events';
import { createServer as createTcpServer } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';

/**
 * The one receiver every contender sends to, on 127.0.0.1. It counts what arrives and resolves
 * `done` at the last expected byte, frame or line, with the time of arrival.
 *  - count 'bytes':  raw bytes (the floor: the file as it is);
 *  - count 'frames': RFC 6587 octet-counted frames, skipped over without copying;
 *  - count 'lines':  LF-terminated messages;
 *  - transport 'relp': a minimal RELP server that acknowledges every syslog command.
 * With `onMessage`, each message is handed over whole (slower; for the latency runs).
 */
export async function startReceiver({ transport = 'tcp', count = 'frames', tls, onMessage, readPaused = false } = {}) {
  const r = {
    bytes: 0,
    frames: 0,
    firstAt: 0,
    lastAt: 0,
    target: Infinity,
    connections: 0,
    sockets: new Set(),
    resolveDone: undefined,
    expect(n) {
      this.target = n;
      this.done = new Promise((res) => (this.resolveDone = res));
      this.check();
      return this.done;
    },
    check() {
      const v = count === 'bytes' ? this.bytes : this.frames;
      if (v >= this.target && this.resolveDone) {
        const res = this.resolveDone;
        this.resolveDone = undefined;
        res(this.lastAt);
      }
    },
    reset() {
      this.bytes = 0;
      this.frames = 0;
      this.firstAt = 0;
      this.lastAt = 0;
      this.target = Infinity;
    },
  };
  const handler = (sock) => {
    r.connections++;
    r.sockets.add(sock);
    sock.on('close', () => r.sockets.delete(sock));
    sock.on('error', () => {});
    if (readPaused) {
      sock.pause();
      return;
    }
    const parse = transport === 'relp' ? relpParser(sock, r, onMessage) : count === 'lines' ? lfParser(r, onMessage) : count === 'frames' ? octetParser(r, onMessage) : (d) => void d;
    sock.on('data', (d) => {
      const now = performance.timeOrigin + performance.now();
      if (!r.firstAt) r.firstAt = now;
      r.lastAt = now;
      r.bytes += d.length;
      parse(d);
      r.check();
    });
  };
  const server = transport === 'tls' ? createTlsServer(tls, handler) : createTcpServer(handler);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  r.port = server.address().port;
  r.close = async () => {
    for (const s of r.sockets) s.destroy();
    server.close();
    await once(server, 'close').catch(() => {});
  };
  return r;
}

/** Skips over octet-counted frames; only with onMessage does it assemble them. */
function octetParser(r, onMessage) {
  let need = 0; // bytes left of the current frame's MSG
  let len = -1; // the octet count being read, -1 between frames
  let parts = [];
  return (d) => {
    let i = 0;
    const n = d.length;
    while (i < n) {
      if (need > 0) {
        const take = Math.min(need, n - i);
        if (onMessage) parts.push(d.subarray(i, i + take));
        need -= take;
        i += take;
        if (need === 0) {
          r.frames++;
          if (onMessage) {
            onMessage(parts.length === 1 ? parts[0] : Buffer.concat(parts));
            parts = [];
          }
          len = -1;
        }
        continue;
      }
      const c = d[i++];
      if (c === 0x20) {
        need = len;
        len = -1;
        if (need === 0) r.frames++;
      } else if (c >= 0x30 && c <= 0x39) {
        len = (len < 0 ? 0 : len * 10) + (c - 0x30);
      } else {
        throw new Error(`receiver: not an octet count (byte ${c})`);
      }
    }
  };
}

function lfParser(r, onMessage) {
  let rest = Buffer.alloc(0);
  return (d) => {
    if (!onMessage) {
      let at = d.indexOf(0x0a);
      while (at !== -1) {
        r.frames++;
        at = d.indexOf(0x0a, at + 1);
      }
      return;
    }
    const buf = rest.length ? Buffer.concat([rest, d]) : d;
    let start = 0;
    let at;
    while ((at = buf.indexOf(0x0a, start)) !== -1) {
      r.frames++;
      onMessage(buf.subarray(start, at));
      start = at + 1;
    }
    rest = Buffer.from(buf.subarray(start));
  };
}

/**
 * RELP (librelp's protocol): frames are "TXNR SP COMMAND SP DATALEN [SP DATA] LF". Answers "open"
 * with the offers, every "syslog" with "200 OK", and "close" with a serverclose.
 */
function relpParser(sock, r, onMessage) {
  let buf = Buffer.alloc(0);
  return (d) => {
    buf = buf.length ? Buffer.concat([buf, d]) : d;
    let i = 0;
    const acks = [];
    for (;;) {
      const sp1 = buf.indexOf(0x20, i);
      if (sp1 === -1) break;
      const sp2 = buf.indexOf(0x20, sp1 + 1);
      if (sp2 === -1) break;
      let j = sp2 + 1;
      let len = 0;
      while (j < buf.length && buf[j] >= 0x30 && buf[j] <= 0x39) len = len * 10 + (buf[j++] - 0x30);
      if (j >= buf.length) break;
      const dataStart = len > 0 ? j + 1 : j;
      if (dataStart + len + 1 > buf.length) break;
      const txnr = buf.subarray(i, sp1).toString('latin1');
      const cmd = buf.subarray(sp1 + 1, sp2).toString('latin1');
      if (cmd === 'syslog') {
        r.frames++;
        if (onMessage) onMessage(buf.subarray(dataStart, dataStart + len));
        acks.push(`${txnr} rsp 6 200 OK\n`);
      } else if (cmd === 'open') {
        const offers = '200 OK\nrelp_version=0\nrelp_software=auditfwd-bench\ncommands=syslog';
        acks.push(`${txnr} rsp ${offers.length} ${offers}\n`);
      } else if (cmd === 'close') {
        acks.push(`${txnr} rsp 0\n0 serverclose 0\n`);
      }
      i = dataStart + len + 1; // the trailing LF
    }
    buf = i < buf.length ? Buffer.from(buf.subarray(i)) : Buffer.alloc(0);
    if (acks.length) sock.write(acks.join(''));
  };
}
