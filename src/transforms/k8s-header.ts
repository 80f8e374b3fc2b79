import { headerField, MAX_MSGID, type Rfc5424Framer } from '../framing/rfc5424.js';
import { Field, type EventScanner } from './k8s-scan.js';
import { normaliseTimestamp, sdText, MAX_SD_VALUE_BYTES } from './k8s-values.js';

const SD_PARAMS: ReadonlyArray<readonly [number, Buffer]> = [
  [Field.stage, Buffer.from(' stage="')],
  [Field.verb, Buffer.from(' verb="')],
  [Field.user, Buffer.from(' user="')],
  [Field.resource, Buffer.from(' resource="')],
  [Field.namespace, Buffer.from(' namespace="')],
  [Field.name, Buffer.from(' name="')],
];
const CODE = Buffer.from(' code="');
const SOURCE_IP = Buffer.from(' sourceIP="');
const TIMES = [Field.stageTimestamp, Field.requestReceivedTimestamp, Field.timestamp];
/** Largest header besides the SD every message carries: fixed parts, and nine SD values of at most 256 bytes each escaped. */
const HEADER_ROOM = 6 * 1024;

/**
 * Writes the RFC 5424 header of a scanned audit event straight from the bytes of the line: values
 * that need no change (plain ASCII, nothing to escape, short enough) are copied; any other value
 * is decoded and goes through the same functions as a parsed event's, so the header is the same
 * byte for byte as the one built from JSON.parse (the property test checks it).
 */
export class EventHeaderWriter {
  private readonly buf: Buffer;
  private readonly pri: Buffer;
  private readonly middle: Buffer;
  /** ` ` + the SD-ELEMENTs every message carries + `[SD-ID auditID="`. */
  private readonly sdStart: Buffer;
  private len = 0;

  constructor(
    private readonly framer: Rfc5424Framer,
    sdId: string,
  ) {
    const parts = framer.parts;
    this.pri = Buffer.from(parts.pri, 'latin1');
    this.middle = Buffer.from(parts.middle, 'latin1');
    this.sdStart = Buffer.from(' ' + parts.sd + '[' + sdId + ' auditID="');
    this.buf = Buffer.allocUnsafeSlow(HEADER_ROOM + this.sdStart.length);
  }

  /** Views of `buf` by length: a header is handed on whole, and a view of a part would be made per event. */
  private readonly views: Buffer[] = [];

  /** The header of the event `sc` last scanned (valid until the next call). */
  write(sc: EventScanner): Buffer {
    const n = this.build(sc);
    return (this.views[n] ??= this.buf.subarray(0, n));
  }

  private build(sc: EventScanner): number {
    this.len = 0;
    this.put(this.pri);
    this.timestamp(sc);
    this.put(this.middle);
    this.msgId(sc);
    this.put(this.sdStart);
    this.value(sc, Field.auditID);
    this.buf[this.len++] = 0x22;
    for (const [id, name] of SD_PARAMS) {
      if (sc.from[id] < 0 || sc.to[id] === sc.from[id]) continue;
      this.put(name);
      this.value(sc, id);
      this.buf[this.len++] = 0x22;
    }
    const code = sc.code;
    if (code !== undefined) {
      this.put(CODE);
      if (Number.isInteger(code) && code >= 0 && code < 1e15) this.digits(code);
      else this.ascii(sdText(String(code))); // '-', '.', 'e', '+': ASCII that needs no escaping
      this.buf[this.len++] = 0x22;
    }
    if (sc.from[Field.sourceIP] >= 0 && sc.to[Field.sourceIP] > sc.from[Field.sourceIP]) {
      this.put(SOURCE_IP);
      this.value(sc, Field.sourceIP);
      this.buf[this.len++] = 0x22;
    }
    this.buf[this.len++] = 0x5d;
    this.buf[this.len++] = 0x20;
    return this.len;
  }

  /** A non-negative integer as String() writes it. */
  private digits(n: number): void {
    let width = 1;
    for (let x = n; x >= 10; x = Math.floor(x / 10)) width++;
    let at = this.len + width;
    this.len = at;
    do {
      this.buf[--at] = 0x30 + (n % 10);
      n = Math.floor(n / 10);
    } while (n > 0);
  }

  /** A short ASCII string, without a call into the runtime. */
  private ascii(s: string): void {
    const buf = this.buf;
    const at = this.len;
    for (let k = 0; k < s.length; k++) buf[at + k] = s.charCodeAt(k);
    this.len += s.length;
  }

  private put(bytes: Buffer): void {
    const n = bytes.length;
    if (n > 32) this.buf.set(bytes, this.len);
    else {
      const buf = this.buf;
      const at = this.len;
      for (let k = 0; k < n; k++) buf[at + k] = bytes[k];
    }
    this.len += n;
  }

  /** A PARAM-VALUE: copied when no byte needs a change, else as sdText makes it of the decoded text. */
  private value(sc: EventScanner, id: number): void {
    const s = sc.from[id];
    const e = sc.to[id];
    if (sc.esc[id] === 0 && e - s <= MAX_SD_VALUE_BYTES) {
      const src = sc.bytes;
      const buf = this.buf;
      let at = this.len;
      let k = s;
      for (; k < e; k++) {
        const c = src[k];
        // Escaped or replaced in a PARAM-VALUE: '"', '\', ']' and DEL (controls cannot be raw in JSON); non-ASCII is decoded.
        if (c >= 0x7f || c === 0x5d) break;
        buf[at++] = c;
      }
      if (k === e) {
        this.len = at;
        return;
      }
    }
    this.len += this.buf.write(sdText(sc.text(id) ?? ''), this.len, 'utf8');
  }

  /** HEADER MSGID: the stage, as headerField makes it. */
  private msgId(sc: EventScanner): void {
    const id = Field.stage;
    const s = sc.from[id];
    const e = sc.to[id];
    if (s >= 0 && e > s && sc.esc[id] === 0) {
      const end = Math.min(e, s + MAX_MSGID);
      let k = s;
      while (k < end && sc.bytes[k] >= 33 && sc.bytes[k] <= 126) k++;
      if (k === end) {
        const buf = this.buf;
        let at = this.len;
        for (k = s; k < end; k++) buf[at++] = sc.bytes[k];
        this.len = at;
        return;
      }
    }
    this.ascii(headerField(sc.text(id), MAX_MSGID));
  }

  /** TIMESTAMP: the first of the event's times that is one, else the batch's reception time. */
  private timestamp(sc: EventScanner): void {
    for (const id of TIMES) {
      if (sc.from[id] < 0 || sc.to[id] === sc.from[id]) continue;
      if (sc.esc[id] === 0 && this.utcTimestamp(sc.bytes, sc.from[id], sc.to[id])) return;
      const t = normaliseTimestamp(sc.text(id));
      if (t !== undefined) {
        this.ascii(t);
        return;
      }
    }
    this.ascii(this.framer.batchTime);
  }

  /**
   * The common case of normaliseTimestamp on bytes: `YYYY-MM-DDTHH:MM:SS[.frac]Z` in range, copied
   * with the fraction cut to 6 digits. False (nothing written) for anything else, which then takes
   * the general path.
   */
  private utcTimestamp(b: Buffer, s: number, e: number): boolean {
    const n = e - s;
    if (n < 20 || b[s + 4] !== 0x2d || b[s + 7] !== 0x2d || b[s + 10] !== 0x54 || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a || b[e - 1] !== 0x5a) return false;
    const d = (at: number) => {
      const c = b[s + at] - 0x30;
      return c >= 0 && c <= 9 ? c : -100;
    };
    if (d(0) < 0 || d(1) < 0 || d(2) < 0 || d(3) < 0) return false;
    const mo = d(5) * 10 + d(6);
    const day = d(8) * 10 + d(9);
    const h = d(11) * 10 + d(12);
    const mi = d(14) * 10 + d(15);
    const sec = d(17) * 10 + d(18);
    if (mo < 1 || mo > 12 || day < 1 || day > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59) return false;
    let end = s + 19;
    if (n > 20) {
      if (b[end] !== 0x2e || n === 21) return false;
      for (let k = end + 1; k < e - 1; k++) if (d(k - s) < 0) return false;
      end = Math.min(e - 1, end + 7);
    } else if (n !== 20) return false;
    const buf = this.buf;
    let at = this.len;
    for (let k = s; k < end; k++) buf[at++] = b[k];
    buf[at++] = 0x5a;
    this.len = at;
    return true;
  }
}
