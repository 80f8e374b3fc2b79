/**
 * RELP wire format (rsyslog's Reliable Event Logging Protocol, as librelp implements it):
 * `TXNR SP COMMAND SP DATALEN [SP DATA] LF`. TXNR and DATALEN have at most 9 digits, COMMAND is
 * 1-32 letters, DATA is present only when DATALEN > 0.
 */

/** librelp rejects a 10-digit TXNR, so a session ends before it would need one. */
export const MAX_TXNR = 999_999_999;
/** The longest `TXNR SP "syslog" SP DATALEN SP` header plus the trailer. */
export const SYSLOG_OVERHEAD = 9 + 1 + 6 + 1 + 9 + 1 + 1;
/** Server frames are responses and offers: far below this. Larger means a confused peer. */
const MAX_SERVER_DATA = 64 * 1024;

export interface RelpFrame {
  txnr: number;
  command: string;
  data: Buffer;
}

export class RelpProtocolError extends Error {
  override name = 'RelpProtocolError';
}

const EMPTY: Buffer = Buffer.alloc(0);

/** The rest of librelp's acknowledgement of one message, `TXNR rsp 6 200 OK`. */
const OK_TAIL = Buffer.from(' rsp 6 200 OK\n', 'latin1');

/** Parses the server's frames from a byte stream that arrives in arbitrary pieces. */
export class RelpReader {
  private pending = EMPTY;
  private okTxnr = 0;

  /**
   * With `onOk`, a plain `200 OK` response goes there as its TXNR alone: one per message, and the
   * frame objects made for each were kept past the 1 MB young generation in bursts (V8 then
   * allocated them in old space: 13 MB of garbage per 100 MB sent, bench/README.md, RSS).
   */
  push(chunk: Buffer, onFrame: (frame: RelpFrame) => void, onOk?: (txnr: number) => void): void {
    const buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let i = 0;
    for (;;) {
      if (onOk) {
        const end = this.okEnd(buf, i);
        if (end !== -1) {
          i = end;
          onOk(this.okTxnr);
          continue;
        }
      }
      const parsed = parseFrame(buf, i);
      if (!parsed) break;
      i = parsed.next;
      onFrame(parsed.frame);
    }
    // Copied so a large chunk is not kept alive by a few leftover bytes.
    this.pending = i === buf.length ? EMPTY : Buffer.from(buf.subarray(i));
  }

  /** Where a whole `TXNR rsp 6 200 OK` frame at `at` ends (its TXNR in okTxnr), or -1: anything else is parseFrame's. */
  private okEnd(buf: Buffer, at: number): number {
    let i = at;
    let n = 0;
    while (i < buf.length && i - at < 9 && buf[i] >= 0x30 && buf[i] <= 0x39) n = n * 10 + buf[i++] - 0x30;
    if (i === at || i + OK_TAIL.length > buf.length) return -1;
    for (let k = 0; k < OK_TAIL.length; k++) if (buf[i + k] !== OK_TAIL[k]) return -1;
    this.okTxnr = n;
    return i + OK_TAIL.length;
  }
}

/** One frame starting at `at`, or undefined when it is not complete yet. Throws on a malformed frame. */
export function parseFrame(buf: Buffer, at: number): { frame: RelpFrame; next: number } | undefined {
  let i = at;
  const number = (what: string): number | undefined => {
    const start = i;
    let n = 0;
    while (i < buf.length && buf[i] >= 0x30 && buf[i] <= 0x39) {
      n = n * 10 + buf[i] - 0x30;
      i++;
      if (i - start > 9) throw new RelpProtocolError(`${what} longer than 9 digits`);
    }
    if (i >= buf.length) return undefined;
    if (i === start) throw new RelpProtocolError(`expected ${what}, got byte ${buf[i]}`);
    return n;
  };
  const txnr = number('TXNR');
  if (txnr === undefined) return undefined;
  if (buf[i++] !== 0x20) throw new RelpProtocolError('expected SP after TXNR');
  const cmdStart = i;
  while (i < buf.length && ((buf[i] | 0x20) >= 0x61 && (buf[i] | 0x20) <= 0x7a)) {
    i++;
    if (i - cmdStart > 32) throw new RelpProtocolError('COMMAND longer than 32 letters');
  }
  if (i >= buf.length) return undefined;
  if (i === cmdStart || buf[i] !== 0x20) throw new RelpProtocolError('expected COMMAND SP');
  const command = buf.toString('latin1', cmdStart, i);
  i++;
  const len = number('DATALEN');
  if (len === undefined) return undefined;
  if (len > MAX_SERVER_DATA) throw new RelpProtocolError(`DATALEN ${len} is beyond ${MAX_SERVER_DATA}`);
  let data = EMPTY;
  if (len > 0) {
    if (buf[i] !== 0x20) throw new RelpProtocolError('expected SP before DATA');
    if (i + 1 + len >= buf.length) return undefined;
    // A view, not a copy: frames are consumed before the next read (RelpReader keeps no reference).
    data = buf.subarray(i + 1, i + 1 + len);
    i += 1 + len;
  } else if (buf[i] === 0x20) {
    // Some peers put the separator even without data; librelp never does, tolerated anyway.
    i++;
    if (i >= buf.length) return undefined;
  }
  if (buf[i] !== 0x0a) throw new RelpProtocolError('expected LF trailer');
  return { frame: { txnr, command, data }, next: i + 1 };
}

/** A command frame with optional data. */
export function encodeFrame(txnr: number, command: string, data: Buffer | string = ''): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data) : data;
  const head = body.length > 0 ? `${txnr} ${command} ${body.length} ` : `${txnr} ${command} 0`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body, Buffer.from('\n')]);
}

const SYSLOG_COMMAND = Buffer.from(' syslog ', 'latin1');

/** Writes `TXNR syslog LEN MSG LF` for src[start, end) into out at o; returns the new offset. Makes no string. */
export function writeSyslogFrame(out: Buffer, o: number, txnr: number, src: Buffer, start: number, end: number): number {
  o = writeDecimal(out, o, txnr);
  out.set(SYSLOG_COMMAND, o);
  o = writeDecimal(out, o + SYSLOG_COMMAND.length, end - start);
  out[o++] = 0x20;
  o += src.copy(out, o, start, end);
  out[o++] = 0x0a;
  return o;
}

function writeDecimal(out: Buffer, o: number, n: number): number {
  let digits = 1;
  for (let x = n; x >= 10; x = Math.floor(x / 10)) digits++;
  let at = o + digits;
  do {
    out[--at] = 0x30 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return o + digits;
}

export interface RelpResponse {
  code: number;
  /** The human-readable text after the code, first line only. */
  text: string;
  /** Lines after the first: the offers of an `open` response. */
  offers: Map<string, string>;
}

const NO_OFFERS: ReadonlyMap<string, string> = new Map();
export const OK: RelpResponse = Object.freeze({ code: 200, text: 'OK', offers: NO_OFFERS as Map<string, string> });

/** `rsp` DATA: `CODE [SP TEXT] [LF OFFERS]`. A response without a valid 3-digit code reads as code 0. */
export function parseResponse(data: Buffer): RelpResponse {
  // One per message on the hot path: librelp acknowledges with exactly "200 OK".
  if (data.length === 6 && data[0] === 0x32 && data[1] === 0x30 && data[2] === 0x30 && data[3] === 0x20 && data[4] === 0x4f && data[5] === 0x4b) return OK;
  const text = data.toString('utf8');
  const lf = text.indexOf('\n');
  const first = lf === -1 ? text : text.slice(0, lf);
  const m = /^(\d{3})(?: (.*))?$/.exec(first);
  const offers = new Map<string, string>();
  if (lf !== -1) {
    for (const line of text.slice(lf + 1).split('\n')) {
      if (!line) continue;
      const eq = line.indexOf('=');
      offers.set(eq === -1 ? line : line.slice(0, eq), eq === -1 ? '' : line.slice(eq + 1));
    }
  }
  return { code: m ? Number(m[1]) : 0, text: m ? (m[2] ?? '') : first, offers };
}

/** The client's `open` offers: protocol version 0 (what librelp speaks) and the syslog command. */
export function openOffers(software: string): string {
  return `relp_version=0\nrelp_software=${software}\ncommands=syslog`;
}
