/**
 * Reads the fields auditfwd needs from an audit event's bytes without building the event: the top
 * level is walked, where the wanted values are is recorded, every other value is skipped in place. Skipped
 * values are still checked against the JSON grammar, byte by byte, because a line JSON.parse would
 * reject must go out raw: the scanner accepts exactly the lines JSON.parse accepts (JSON.parse sees
 * the line decoded as UTF-8; bytes of 0x80 and above can only be valid inside strings, where any
 * byte sequence decodes to something, so both agree on every byte). Duplicate keys: the last wins,
 * as in JSON.parse.
 */

import { BACKSLASH, F_OTHER, HEX, KeyTable, literalEnd, MINUS, numberEnd, numberValue, QUOTE, SIMPLE_ESCAPE, skipWs, unescape, type Names } from './json-bytes.js';
import { K8S_SCAN_WASM } from './k8s-scan-wasm.js';

const LBRACE = 0x7b;
const RBRACE = 0x7d;
const LBRACKET = 0x5b;
const RBRACKET = 0x5d;
const COMMA = 0x2c;
const COLON = 0x3a;

/** What the header and the SD element are made of: strings are non-empty, `code` finite. */
export interface AuditFields {
  auditID: string;
  stage?: string;
  verb?: string;
  user?: string;
  resource?: string;
  namespace?: string;
  name?: string;
  code?: number;
  sourceIP?: string;
  stageTimestamp?: string;
  requestReceivedTimestamp?: string;
  timestamp?: string;
}

// Field ids. A key is matched on its bytes; one written with escapes is decoded first.
const F_KIND = 1;
const F_API_VERSION = 2;
const F_AUDIT_ID = 3;
const F_STAGE = 4;
const F_VERB = 5;
const F_USER = 6;
const F_OBJECT_REF = 7;
const F_RESPONSE_STATUS = 8;
const F_SOURCE_IPS = 9;
const F_STAGE_TS = 10;
const F_RECEIVED_TS = 11;
const F_TS = 12;
// Inside user, objectRef and responseStatus.
const F_USERNAME = 13;
const F_RESOURCE = 14;
const F_NAMESPACE = 15;
const F_NAME = 16;
const F_CODE = 17;
const F_SOURCE_IP = 18;
const FIELD_COUNT = 19;

/** The fields the header is written from, by id (EventScanner.from/to/esc/text). */
export const Field = {
  stage: F_STAGE, verb: F_VERB, auditID: F_AUDIT_ID, user: F_USERNAME, resource: F_RESOURCE, namespace: F_NAMESPACE,
  name: F_NAME, sourceIP: F_SOURCE_IP, stageTimestamp: F_STAGE_TS, requestReceivedTimestamp: F_RECEIVED_TS, timestamp: F_TS,
} as const;

const TOP: Names = [
  ['kind', F_KIND], ['apiVersion', F_API_VERSION], ['auditID', F_AUDIT_ID], ['stage', F_STAGE], ['verb', F_VERB],
  ['user', F_USER], ['objectRef', F_OBJECT_REF], ['responseStatus', F_RESPONSE_STATUS], ['sourceIPs', F_SOURCE_IPS],
  ['stageTimestamp', F_STAGE_TS], ['requestReceivedTimestamp', F_RECEIVED_TS], ['timestamp', F_TS],
];
const IN_USER: Names = [['username', F_USERNAME]];
const IN_OBJECT_REF: Names = [['resource', F_RESOURCE], ['namespace', F_NAMESPACE], ['name', F_NAME]];
const IN_RESPONSE_STATUS: Names = [['code', F_CODE]];

const TOP_KEYS = new KeyTable(TOP);
const USER_KEYS = new KeyTable(IN_USER);
const OBJECT_REF_KEYS = new KeyTable(IN_OBJECT_REF);
const RESPONSE_STATUS_KEYS = new KeyTable(IN_RESPONSE_STATUS);

/**
 * SWAR: the top bit of each byte of `x` that is a quote, a backslash or below 0x20 is set (XOR 0x02
 * maps '"' to 0x20 and keeps controls below 0x21, so one "less than 0x21" test finds both).
 */
function special(x: number): number {
  const y = x ^ 0x02020202;
  const e = x ^ 0x5c5c5c5c;
  return (((y - 0x21212121) & ~y) | ((e - 0x01010101) & ~e)) & 0x80808080;
}

/**
 * Zero bytes after the copy of the line, written as three words: more than the longest read ahead
 * (a \\u escape; a word read at the first zero byte).
 */
const PADDING = 12;
const ABSENT = -1;
const NOT_STRING = -2;
const EVENT = Buffer.from('Event');
const AUDIT_API = Buffer.from('audit.k8s.io/');

/**
 * One scanner per encoder. It keeps what it found as byte ranges into its copy of the line, so
 * that the walk allocates nothing: the header is written from those bytes (see k8s-header.ts), and
 * strings are made only where a value needs decoding or a feature (dedupe) needs text.
 */
export class EventScanner {
  /** The fast path (k8s-scan.c): absent when the scanner is made without it, for tests and benches. */
  private readonly fast: FastScan | undefined;
  private fastTaken = false;
  /** Whether the last string ended by stringEnd had a backslash. */
  private escaped = false;
  private stack: number[] = [];
  /**
   * The line is scanned in a copy followed by zero bytes: every read past its end then finds a byte
   * that no JSON token accepts, so there are no bounds checks, and no reads past the end of an
   * array (which V8 compiles to slower code for every read at that site).
   */
  bytes: Buffer = Buffer.alloc(0);
  /**
   * The copy for reads of four bytes at any offset (stringEnd, key lookup, the header writer). A
   * read never reaches past the zero bytes after the line: each stops at the first of them.
   */
  view: DataView = new DataView(new ArrayBuffer(0));
  /** The scanner's own copy, for lines longer than the fast path takes (or all, without it). */
  private own: Buffer = Buffer.alloc(0);
  private ownView = this.view;
  /**
   * Per field: where its string's content starts in `bytes` (ABSENT, NOT_STRING), where it ends,
   * whether it has escapes. With the fast path, views of its memory: both walks fill the same arrays.
   */
  readonly from: Int32Array;
  readonly to: Int32Array;
  readonly esc: Uint8Array;
  /** responseStatus.code when it is a finite number. */
  code: number | undefined;
  /** With `wanted` keys: an object holding those of them the event has, as JSON.parse gives them. */
  selected: Record<string, unknown> | undefined;

  /**
   * Why the fast path could not be made, when it could not: the walk then reads every line. A limit
   * on address space (`ulimit -v`) refuses the memory a WebAssembly instance reserves.
   */
  readonly fastPathError: string | undefined;

  constructor(fast = true) {
    let instance: FastScan | undefined;
    try {
      instance = fast ? fastScan() : undefined;
    } catch (err) {
      this.fastPathError = (err as Error).message;
    }
    this.fast = instance;
    this.from = this.fast?.from ?? new Int32Array(FIELD_COUNT);
    this.to = this.fast?.to ?? new Int32Array(FIELD_COUNT);
    this.esc = this.fast?.esc ?? new Uint8Array(FIELD_COUNT);
  }

  /**
   * Whether the line is an audit Event: JSON (as JSON.parse decides), `kind` Event, a non-empty
   * auditID, no apiVersion or one in audit.k8s.io. `wanted`: top-level keys whose values a selector
   * needs, parsed into `selected`.
   */
  scan(line: Buffer, wanted?: ReadonlySet<string>): boolean {
    const len = line.length;
    const fast = this.fast;
    if (fast !== undefined && len <= fast.maxBytes) {
      this.bytes = fast.line;
      this.view = fast.view;
      fast.line.set(line, 0);
      if (wanted === undefined && fast.scan(len) === 1) {
        this.fastTaken = true;
        this.selected = undefined;
        const code = fast.code;
        const n = code[0] >= 0 ? numberValue(fast.line, code[0], code[1]) : NaN;
        this.code = Number.isFinite(n) ? n : undefined;
        return this.isEvent();
      }
    } else {
      if (this.own.length < len + PADDING) {
        this.own = Buffer.allocUnsafeSlow(Math.max(len + PADDING, 2 * this.own.length, 4096));
        this.ownView = new DataView(this.own.buffer, this.own.byteOffset, this.own.length);
      }
      this.bytes = this.own;
      this.view = this.ownView;
      this.bytes.set(line, 0);
    }
    this.fastTaken = false;
    return this.walk(len, wanted);
  }

  /** The fast path's instance when it took the last line (its header writer can then run), else undefined. */
  get fastLine(): FastScan | undefined {
    return this.fastTaken ? this.fast : undefined;
  }

  /** The JavaScript walk over the line's copy in `bytes`: what decides every line the fast path leaves. */
  private walk(len: number, wanted: ReadonlySet<string> | undefined): boolean {
    const b = this.bytes;
    const view = this.view;
    view.setInt32(len, 0);
    view.setInt32(len + 4, 0);
    view.setInt32(len + 8, 0);
    this.from.fill(ABSENT);
    this.code = undefined;
    const selected: Record<string, unknown> | undefined = wanted ? Object.create(null) : undefined;
    this.selected = selected;
    let i = skipWs(b, 0);
    if (b[i] !== LBRACE) return false;
    i = skipWs(b, i + 1);
    if (b[i] !== RBRACE) {
      for (;;) {
        if (b[i] !== QUOTE) return false;
        const ks = i + 1;
        const ke = this.stringEnd(b, ks);
        if (ke < 0) return false;
        const keyText = this.escaped ? unescape(b, ks, ke) : undefined;
        i = ke + 1;
        if (b[i] <= 0x20) i = skipWs(b, i);
        if (b[i] !== COLON) return false;
        i++;
        if (b[i] <= 0x20) i = skipWs(b, i);
        const vs = i;
        const id = keyText === undefined ? TOP_KEYS.find(b, this.view, ks, ke) : TOP_KEYS.findName(keyText);
        if (id !== F_OTHER) i = this.pickTop(b, i, id);
        else if (b[i] === QUOTE) {
          // A string value (requestURI, level, userAgent…) is skipped here, without a call.
          i = this.stringEnd(b, i + 1);
          if (i >= 0) i++;
        } else i = this.valueEnd(b, i);
        if (i < 0) return false;
        if (selected) {
          const key = keyText ?? b.toString('utf8', ks, ke);
          if (wanted!.has(key)) selected[key] = JSON.parse(b.toString('utf8', vs, i));
        }
        if (b[i] <= 0x20) i = skipWs(b, i);
        if (b[i] === COMMA) {
          i++;
          if (b[i] <= 0x20) i = skipWs(b, i);
          continue;
        }
        if (b[i] === RBRACE) break;
        return false;
      }
    }
    if (skipWs(b, i + 1) !== len) return false;
    return this.isEvent();
  }

  /** `kind` Event, a non-empty auditID, no apiVersion or one in audit.k8s.io. */
  private isEvent(): boolean {
    return this.equals(F_KIND, EVENT, true) && this.from[F_AUDIT_ID] >= 0 && this.to[F_AUDIT_ID] > this.from[F_AUDIT_ID] &&
      (this.from[F_API_VERSION] === ABSENT || this.equals(F_API_VERSION, AUDIT_API, false));
  }

  /** Whether field `id` is a string equal to `text` (or starting with it). */
  private equals(id: number, text: Buffer, whole: boolean): boolean {
    const s = this.from[id];
    if (s < 0) return false;
    if (this.esc[id] === 1) {
      const v = unescape(this.bytes, s, this.to[id]);
      return whole ? v === text.toString() : v.startsWith(text.toString());
    }
    const n = this.to[id] - s;
    if (whole ? n !== text.length : n < text.length) return false;
    for (let k = 0, m = text.length; k < m; k++) if (this.bytes[s + k] !== text[k]) return false;
    return true;
  }

  /** Field `id` as JSON.parse would give it, when it is a non-empty string. */
  text(id: number): string | undefined {
    const s = this.from[id];
    const e = this.to[id];
    if (s < 0 || e === s) return undefined;
    return this.esc[id] === 1 ? unescape(this.bytes, s, e) : this.bytes.toString('utf8', s, e);
  }

  /** What the last event scanned holds, as strings (for tests, and for features that need text). */
  fields(): AuditFields {
    return {
      auditID: this.text(F_AUDIT_ID) ?? '',
      stage: this.text(F_STAGE),
      verb: this.text(F_VERB),
      user: this.text(F_USERNAME),
      resource: this.text(F_RESOURCE),
      namespace: this.text(F_NAMESPACE),
      name: this.text(F_NAME),
      code: this.code,
      sourceIP: this.text(F_SOURCE_IP),
      stageTimestamp: this.text(F_STAGE_TS),
      requestReceivedTimestamp: this.text(F_RECEIVED_TS),
      timestamp: this.text(F_TS),
    };
  }

  /**
   * Index of the quote that ends the string whose content starts at `i`, or -1 (a control
   * character, a bad escape or the end of the line). Four bytes at a time, read from wherever the
   * search is (a DataView reads at any offset: no word boundary to mask, 13 % less than aligned
   * Int32Array words with masks): `special` marks the quotes, backslashes and control characters
   * of the four, and the lowest mark is always a real one (a false mark only comes from the borrow
   * of a real one below it).
   */
  private stringEnd(b: Buffer, i: number): number {
    const view = this.view;
    let escaped = false;
    let p = i;
    for (;;) {
      let hits = special(view.getInt32(p, true));
      while (hits === 0) {
        p += 4;
        hits = special(view.getInt32(p, true));
      }
      p += (31 - Math.clz32(hits & -hits)) >> 3;
      const c = b[p];
      if (c === QUOTE) {
        this.escaped = escaped;
        return p;
      }
      if (c !== BACKSLASH) return -1; // a control character
      const after = b[p + 1];
      if (after === 0x75) {
        if ((HEX[b[p + 2]] | HEX[b[p + 3]] | HEX[b[p + 4]] | HEX[b[p + 5]]) < 0) return -1;
        p += 6;
      } else if (SIMPLE_ESCAPE[after] === 1) p += 2;
      else return -1;
      escaped = true;
    }
  }

  /** Records field `id`'s string range (NOT_STRING for any other valid value); the end of the value or -1. */
  private pickString(b: Buffer, i: number, id: number): number {
    if (b[i] !== QUOTE) {
      this.from[id] = NOT_STRING;
      return this.valueEnd(b, i);
    }
    const end = this.stringEnd(b, i + 1);
    if (end < 0) return -1;
    this.from[id] = i + 1;
    this.to[id] = end;
    this.esc[id] = this.escaped ? 1 : 0;
    return end + 1;
  }

  private pickTop(b: Buffer, i: number, id: number): number {
    switch (id) {
      case F_USER:
        this.from[F_USERNAME] = ABSENT;
        return this.pickObject(b, i, USER_KEYS);
      case F_OBJECT_REF:
        this.from[F_RESOURCE] = this.from[F_NAMESPACE] = this.from[F_NAME] = ABSENT;
        return this.pickObject(b, i, OBJECT_REF_KEYS);
      case F_RESPONSE_STATUS:
        this.code = undefined;
        return this.pickObject(b, i, RESPONSE_STATUS_KEYS);
      case F_SOURCE_IPS:
        return this.pickFirstIp(b, i);
    }
    return this.pickString(b, i, id);
  }

  /** An object's members named in `keys` (any other value leaves them unset); the end of the value or -1. */
  private pickObject(b: Buffer, i: number, keys: KeyTable): number {
    if (b[i] !== LBRACE) return this.valueEnd(b, i);
    i = skipWs(b, i + 1);
    if (b[i] === RBRACE) return i + 1;
    for (;;) {
      if (b[i] !== QUOTE) return -1;
      const ks = i + 1;
      const ke = this.stringEnd(b, ks);
      if (ke < 0) return -1;
      const id = this.escaped ? keys.findName(unescape(b, ks, ke)) : keys.find(b, this.view, ks, ke);
      i = ke + 1;
      if (b[i] <= 0x20) i = skipWs(b, i);
      if (b[i] !== COLON) return -1;
      i++;
      if (b[i] <= 0x20) i = skipWs(b, i);
      if (id === F_CODE) {
        const end = b[i] === MINUS || (b[i] >= 0x30 && b[i] <= 0x39) ? numberEnd(b, i) : -1;
        if (end >= 0) {
          const n = numberValue(b, i, end);
          this.code = Number.isFinite(n) ? n : undefined;
          i = end;
        } else {
          this.code = undefined;
          i = this.valueEnd(b, i);
        }
      } else if (id !== F_OTHER) i = this.pickString(b, i, id);
      else i = this.valueEnd(b, i);
      if (i < 0) return -1;
      if (b[i] <= 0x20) i = skipWs(b, i);
      if (b[i] === COMMA) {
        i++;
        if (b[i] <= 0x20) i = skipWs(b, i);
        continue;
      }
      return b[i] === RBRACE ? i + 1 : -1;
    }
  }

  /** sourceIPs[0] when it is a string. */
  private pickFirstIp(b: Buffer, i: number): number {
    this.from[F_SOURCE_IP] = ABSENT;
    if (b[i] !== LBRACKET) return this.valueEnd(b, i);
    const start = skipWs(b, i + 1);
    if (b[start] === RBRACKET) return start + 1;
    if (this.pickString(b, start, F_SOURCE_IP) < 0) return -1;
    // The rest of the array, checked: skip it whole from its '[' (the first element again, cheaply).
    return this.valueEnd(b, i);
  }

  /** Index after the valid JSON value at `i`, or -1. Iterative: nesting depth is unbounded, as in JSON.parse. */
  private valueEnd(b: Buffer, i: number): number {
    const stack = this.stack;
    let depth = 0;
    // The innermost open container, '{' or '[' (0 outside): the byte that closes it is open + 2.
    let open = 0;
    // A member's key comes next, not a value. Keys and string values share one call of stringEnd,
    // so that V8 inlines it here.
    let key = false;
    for (;;) {
      const c = b[i];
      if (c === QUOTE) {
        i = this.stringEnd(b, i + 1);
        if (i < 0) return -1;
        i++;
        if (key) {
          if (b[i] <= 0x20) i = skipWs(b, i);
          if (b[i] !== COLON) return -1;
          i++;
          if (b[i] <= 0x20) i = skipWs(b, i);
          key = false;
          continue;
        }
      } else if (key) return -1;
      else if (c === LBRACE || c === LBRACKET) {
        i++;
        if (b[i] <= 0x20) i = skipWs(b, i);
        if (b[i] === c + 2) i++;
        else {
          stack[depth++] = open;
          open = c;
          key = c === LBRACE;
          continue;
        }
      } else if (c === MINUS || (c >= 0x30 && c <= 0x39)) {
        i = numberEnd(b, i);
        if (i < 0) return -1;
      } else {
        i = literalEnd(b, i);
        if (i < 0) return -1;
      }
      // After a value: close containers until one continues with a comma.
      for (;;) {
        if (depth === 0) return i;
        if (b[i] <= 0x20) i = skipWs(b, i);
        const d = b[i];
        if (d === COMMA) {
          i++;
          if (b[i] <= 0x20) i = skipWs(b, i);
          key = open === LBRACE;
          break;
        }
        if (d !== open + 2) return -1;
        open = stack[--depth];
        i++;
      }
    }
  }
}

// What is used of WebAssembly (the project's TypeScript libraries do not declare it).
declare const WebAssembly: {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: FastExports };
};
interface FastExports {
  memory: { buffer: ArrayBuffer };
  scan(len: number): number;
  maxBytes(): number;
  line(): number;
  from(): number;
  to(): number;
  esc(): number;
  code(): number;
  writeHeader(): number;
  header(): number;
  headerBytes(): number;
  partLengths(): number;
  parts(): number;
  partsBytes(): number;
}

/** The fast path's module, compiled at the first scanner made: raw mode never loads WebAssembly. */
let fastModule: object | undefined;

export interface FastScan {
  /** 1 when the line in `line` is a JSON object (as JSON.parse decides) with the fields filled in; 0: the walk decides. */
  scan(len: number): number;
  readonly maxBytes: number;
  /** Where the line is copied to, with room for the zero bytes after it. */
  readonly line: Buffer;
  readonly view: DataView;
  readonly from: Int32Array;
  readonly to: Int32Array;
  readonly esc: Uint8Array;
  /** responseStatus.code's number in `line`: start and end, or -1. */
  readonly code: Int32Array;
  /** The header of the line it took (k8s-scan.c, write_header): its length in `header`, or 0 when the writer in JavaScript must write it. */
  writeHeader(): number;
  readonly header: Buffer;
  /** Views of `header` by length, made once. */
  readonly headerViews: Buffer[];
  /** The header's fixed parts: three lengths, then their bytes (at most `parts.length`). */
  readonly partLengths: Int32Array;
  readonly parts: Buffer;
  /** The writer whose parts are in `parts`. */
  partsOf: object | undefined;
}

/** Zero bytes the module writes after a line (k8s-scan.c, PADDING). */
const FAST_PADDING = 80;

/** An instance of the fast path, with its own memory; throws where WebAssembly refuses one. */
export function fastScan(): FastScan {
  fastModule ??= new WebAssembly.Module(Buffer.from(K8S_SCAN_WASM, 'base64'));
  const exports = new WebAssembly.Instance(fastModule).exports;
  // The module never grows its memory, so these views stay valid.
  const memory = exports.memory.buffer;
  const maxBytes = exports.maxBytes();
  const line = Buffer.from(memory, exports.line(), maxBytes + FAST_PADDING);
  return {
    scan: exports.scan,
    maxBytes,
    line,
    view: new DataView(memory, line.byteOffset, line.length),
    from: new Int32Array(memory, exports.from(), FIELD_COUNT),
    to: new Int32Array(memory, exports.to(), FIELD_COUNT),
    esc: new Uint8Array(memory, exports.esc(), FIELD_COUNT),
    code: new Int32Array(memory, exports.code(), 2),
    writeHeader: exports.writeHeader,
    header: Buffer.from(memory, exports.header(), exports.headerBytes()),
    headerViews: [],
    partLengths: new Int32Array(memory, exports.partLengths(), 3),
    parts: Buffer.from(memory, exports.parts(), exports.partsBytes()),
    partsOf: undefined,
  };
}
