import { headerField, MAX_MSGID, type Rfc5424Framer } from '../framing/rfc5424.js';
import { Field, type EventScanner, type FastScan } from './k8s-scan.js';
import { normaliseTimestamp, sdText, MAX_SD_VALUE_BYTES } from './k8s-values.js';
import { wordsOf } from './json-bytes.js';

/**
 * Fixed bytes of the header as little-endian 32-bit words, the last one zero-padded: written a word
 * at a time, where a byte loop or Buffer#set (a call into the runtime) cost 70 ns per event for the
 * stage's part alone.
 */
interface Part {
  readonly words: Int32Array;
  readonly lastMask: number;
  readonly length: number;
}

function part(bytes: Buffer): Part {
  const { words, lastMask } = wordsOf(bytes);
  return { words, lastMask, length: bytes.length };
}

// Two arrays, not pairs: destructuring a pair per param per event showed in profiles.
const SD_IDS = [Field.stage, Field.verb, Field.user, Field.resource, Field.namespace, Field.name];
const SD_NAMES = ['stage', 'verb', 'user', 'resource', 'namespace', 'name'].map((n) => part(Buffer.from(' ' + n + '="')));
/** Distinct stages remembered with the header bytes around them (there are four stages). */
const STAGE_CACHE = 8;
const CODE = part(Buffer.from(' code="'));
const SOURCE_IP = part(Buffer.from(' sourceIP="'));
/** The lowest n bytes of a little-endian word, by n (1 to 3). */
const LOW_BYTES = [0, 0xff, 0xffff, 0xffffff];
/**
 * Non-zero unless all four bytes of `x` are ASCII digits (SWAR): the lowest byte that is not one
 * marks its top bit, by a borrow below '0' or above '9' (a byte above 0xaf by the first term).
 */
const notDigits = (x: number): number => ((x - 0x30303030) | (0x39393939 - x)) & 0x80808080;
/** The number of the two digits at `at`. */
const two = (b: Buffer, at: number): number => (b[at] - 0x30) * 10 + b[at + 1] - 0x30;
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
  private readonly view: DataView;
  private readonly pri: Part;
  private readonly middle: Part;
  /** ` ` + the SD-ELEMENTs every message carries + `[SD-ID auditID="`. */
  private readonly sdStart: Part;
  /** The three parts' length: the fast path writes headers only where they fit its memory (long --sd-element settings may not). */
  private readonly partsBytes: number;
  private len = 0;
  /** Stages seen, and for each the bytes from after TIMESTAMP to the auditID value (see cachedStage). */
  private readonly stages: Part[] = [];
  private readonly stageParts: Part[] = [];

  constructor(
    private readonly framer: Rfc5424Framer,
    sdId: string,
  ) {
    const parts = framer.parts;
    this.pri = part(Buffer.from(parts.pri, 'latin1'));
    this.middle = part(Buffer.from(parts.middle, 'latin1'));
    this.sdStart = part(Buffer.from(' ' + parts.sd + '[' + sdId + ' auditID="'));
    this.partsBytes = this.pri.length + this.middle.length + this.sdStart.length;
    // + 4: a part's last word may reach 3 bytes past the header's end.
    this.buf = Buffer.allocUnsafeSlow(HEADER_ROOM + this.sdStart.length + 4);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.length);
  }

  /** Views of `buf` by length: a header is handed on whole, and a view of a part would be made per event. */
  private readonly views: Buffer[] = [];

  /** The header of the event `sc` last scanned (valid until the next call). */
  write(sc: EventScanner): Buffer {
    const fast = sc.fastLine;
    if (fast !== undefined && this.partsBytes <= fast.parts.length) {
      if (fast.partsOf !== this) this.giveParts(fast);
      const n = fast.writeHeader();
      if (n > 0) return (fast.headerViews[n] ??= fast.header.subarray(0, n));
    }
    const n = this.build(sc);
    return (this.views[n] ??= this.buf.subarray(0, n));
  }

  /** This writer's fixed parts into the fast path's memory, where its header writer reads them. */
  private giveParts(fast: FastScan): void {
    let at = 0;
    [this.pri, this.middle, this.sdStart].forEach((p, k) => {
      fast.partLengths[k] = p.length;
      at += this.partBytes(p).copy(fast.parts, at);
    });
    fast.partsOf = this;
  }

  private build(sc: EventScanner): number {
    this.len = 0;
    this.put(this.pri);
    this.timestamp(sc);
    if (!this.cachedStage(sc)) {
      this.put(this.middle);
      this.msgId(sc);
      this.put(this.sdStart);
    }
    this.value(sc, Field.auditID);
    this.buf[this.len++] = 0x22;
    for (let p = 0; p < SD_IDS.length; p++) {
      const id = SD_IDS[p];
      if (sc.from[id] < 0 || sc.to[id] === sc.from[id]) continue;
      this.put(SD_NAMES[p]);
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

  /** Bytes past the part's end in its last word are written too: what comes next overwrites them. */
  private put(p: Part): void {
    const words = p.words;
    const view = this.view;
    let at = this.len;
    // The count read once: a typed array's length, read at each turn, was a quarter of build's time
    // (a 64-bit length checked into an int32 through the FPU, again after every store).
    for (let k = 0, n = words.length; k < n; k++, at += 4) view.setInt32(at, words[k], true);
    this.len += p.length;
  }

  /** A PARAM-VALUE: copied when no byte needs a change, else as sdText makes it of the decoded text. */
  private value(sc: EventScanner, id: number): void {
    const s = sc.from[id];
    const e = sc.to[id];
    if (sc.esc[id] === 0 && e - s <= MAX_SD_VALUE_BYTES) {
      let at = this.len;
      let k = s;
      // Four bytes at a time (SWAR), the last word too: copied while none of the value's bytes is
      // DEL or above, or ']' (escaped or replaced in a PARAM-VALUE; '"' and '\' come escaped in
      // JSON, and controls cannot be raw there). Bytes after the value in the last word are
      // copied as well and overwritten by what comes next. A mark never comes from a byte above
      // the value's end: the borrows of the ']' test only carry upwards.
      const from = sc.view;
      const to = this.view;
      for (; k < e; k += 4, at += 4) {
        const x = from.getInt32(k, true);
        const y = x ^ 0x5d5d5d5d;
        let marks = (((x & 0x7f7f7f7f) + 0x01010101) | x | ((y - 0x01010101) & ~y)) & 0x80808080;
        if (e - k < 4) marks &= LOW_BYTES[e - k];
        if (marks !== 0) break;
        to.setInt32(at, x, true);
      }
      if (k >= e) {
        this.len = at - (k - e);
        return;
      }
    }
    this.len += this.buf.write(sdText(sc.text(id) ?? ''), this.len, 'utf8');
  }

  /**
   * ` HOSTNAME APP-NAME PROCID MSGID SD…[SD-ID auditID="` in one copy, when the stage is one seen
   * before and written as it is (printable ASCII, no escapes, not cut): false when it is not.
   */
  private cachedStage(sc: EventScanner): boolean {
    const s = sc.from[Field.stage];
    const n = sc.to[Field.stage] - s;
    if (s < 0 || n <= 0 || n > MAX_MSGID || sc.esc[Field.stage] !== 0) return false;
    const b = sc.bytes;
    const view = sc.view;
    const stages = this.stages;
    for (let c = 0; c < stages.length; c++) {
      const stage = stages[c];
      if (stage.length !== n) continue;
      const words = stage.words;
      const last = words.length - 1;
      let k = 0;
      while (k < last && view.getInt32(s + 4 * k, true) === words[k]) k++;
      if (k === last && (view.getInt32(s + 4 * last, true) & stage.lastMask) === words[last]) {
        this.put(this.stageParts[c]);
        return true;
      }
    }
    if (stages.length >= STAGE_CACHE) return false;
    for (let k = s; k < s + n; k++) if (b[k] < 33 || b[k] > 126) return false;
    stages.push(part(b.subarray(s, s + n)));
    this.stageParts.push(part(Buffer.concat([this.partBytes(this.middle), b.subarray(s, s + n), this.partBytes(this.sdStart)])));
    return false;
  }

  private partBytes(p: Part): Buffer {
    return Buffer.from(p.words.buffer, p.words.byteOffset, p.length);
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
      if (sc.esc[id] === 0 && this.utcTimestamp(sc.bytes, sc.view, sc.from[id], sc.to[id])) return;
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
  private utcTimestamp(b: Buffer, view: DataView, s: number, e: number): boolean {
    const n = e - s;
    if (n < 20 || b[s + 4] !== 0x2d || b[s + 7] !== 0x2d || b[s + 10] !== 0x54 || b[s + 13] !== 0x3a || b[s + 16] !== 0x3a || b[e - 1] !== 0x5a) return false;
    // The 14 digits in four words, the separators between them replaced by '0'.
    const digits =
      notDigits(view.getInt32(s, true)) |
      notDigits((view.getInt32(s + 4, true) & 0x00ffff00) | 0x30000030) |
      notDigits((view.getInt32(s + 8, true) & 0xff00ffff) | 0x00300000) |
      notDigits((view.getInt32(s + 12, true) & 0xffff00ff) | 0x00003000) |
      notDigits((view.getInt32(s + 16, true) & 0x00ffff00) | 0x30000030);
    if (digits !== 0) return false;
    const mo = two(b, s + 5);
    const day = two(b, s + 8);
    if (mo < 1 || mo > 12 || day < 1 || day > 31 || two(b, s + 11) > 23 || two(b, s + 14) > 59 || two(b, s + 17) > 59) return false;
    let end = s + 19;
    if (n > 20) {
      if (b[end] !== 0x2e || n === 21) return false;
      for (let k = end + 1; k < e - 1; k++) if (b[k] < 0x30 || b[k] > 0x39) return false;
      end = Math.min(e - 1, end + 7);
    } else if (n !== 20) return false;
    // Whole words, the last one too: the 'Z' and what comes next overwrite the bytes after `end`.
    let at = this.len;
    for (let k = s; k < end; k += 4, at += 4) this.view.setInt32(at, view.getInt32(k, true), true);
    at -= (end - s) % 4 === 0 ? 0 : 4 - ((end - s) % 4);
    this.buf[at++] = 0x5a;
    this.len = at;
    return true;
  }
}
