/**
 * JSON on bytes: the grammar pieces the audit event scanner (k8s-scan.ts) is built from. Each reads
 * from a buffer that is followed by zero bytes (no bounds checks: a zero byte ends every token) and
 * returns the index after what it read, or -1 where JSON.parse would reject the text.
 */

export const QUOTE = 0x22;
export const BACKSLASH = 0x5c;
export const MINUS = 0x2d;

export type Names = ReadonlyArray<readonly [string, number]>;
export const F_OTHER = 0;

/**
 * Bytes as little-endian 32-bit words, the last one zero-padded, and the mask of the last word's
 * bytes that belong to them: for comparing and copying a word at a time.
 */
export function wordsOf(bytes: Buffer): { words: Int32Array; lastMask: number } {
  const padded = Buffer.alloc((bytes.length + 3) & ~3);
  bytes.copy(padded);
  const words = Int32Array.from({ length: padded.length >> 2 }, (_, j) => padded.readInt32LE(4 * j));
  return { words, lastMask: bytes.length % 4 === 0 ? -1 : (1 << ((bytes.length % 4) * 8)) - 1 };
}

/**
 * Key lookup on bytes, no string made: a slot from the key's length and its first and last byte,
 * then one comparison. Most keys of an event are not wanted and find their slot empty.
 */
export class KeyTable {
  /** Per slot: the key's bytes as little-endian 32-bit words, the last one zero-padded. */
  private readonly keys: Array<Int32Array | undefined> = new Array(KEY_SLOTS).fill(undefined);
  private readonly lengths = new Int32Array(KEY_SLOTS).fill(-1);
  /** The bytes of the last word that belong to the key. */
  private readonly lastMask = new Int32Array(KEY_SLOTS);
  private readonly ids = new Uint8Array(KEY_SLOTS);
  private readonly byName = new Map<string, number>();

  constructor(names: Names) {
    for (const [name, id] of names) {
      const k = Buffer.from(name, 'latin1');
      const slot = keySlot(k, 0, k.length);
      if (this.keys[slot] !== undefined) throw new Error(`key slot taken: ${name}`); // a new key needs another hash
      const { words, lastMask } = wordsOf(k);
      this.keys[slot] = words;
      this.lengths[slot] = k.length;
      this.lastMask[slot] = lastMask;
      this.ids[slot] = id;
      this.byName.set(name, id);
    }
  }

  /**
   * The id of the key in `b[start, end)`, compared a word at a time: `view` is `b`'s bytes, and up
   * to three bytes after `end` are read (the scanner's copy of a line is followed by zero bytes).
   */
  find(b: Buffer, view: DataView, start: number, end: number): number {
    const slot = keySlot(b, start, end);
    if (this.lengths[slot] !== end - start) return F_OTHER;
    const k = this.keys[slot]!;
    const last = k.length - 1;
    for (let j = 0; j < last; j++) if (view.getInt32(start + 4 * j, true) !== k[j]) return F_OTHER;
    if ((view.getInt32(start + 4 * last, true) & this.lastMask[slot]) !== k[last]) return F_OTHER;
    return this.ids[slot];
  }

  findName(name: string): number {
    return this.byName.get(name) ?? F_OTHER;
  }
}

const KEY_SLOTS = 64;
const keySlot = (b: Buffer, start: number, end: number) => ((end - start) * 5 + b[start] + b[end - 1] * 3) & (KEY_SLOTS - 1);

export const HEX = new Int8Array(256).fill(-1);
for (let c = 0; c < 10; c++) HEX[0x30 + c] = c;
for (let c = 0; c < 6; c++) HEX[0x41 + c] = HEX[0x61 + c] = 10 + c;

/** The byte after a backslash that JSON allows, and the character it stands for ('u' handled apart). */
const ESCAPES: Record<number, string> = { 0x22: '"', 0x5c: '\\', 0x2f: '/', 0x62: '\b', 0x66: '\f', 0x6e: '\n', 0x72: '\r', 0x74: '\t' };
export const SIMPLE_ESCAPE = new Uint8Array(256);
for (const k of Object.keys(ESCAPES)) SIMPLE_ESCAPE[Number(k)] = 1;

export const skipWs = (b: Buffer, i: number): number => {
  for (;;) {
    const c = b[i];
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return i;
    i++;
  }
};

/** Index after a JSON number starting at `i`, or -1. */
export function numberEnd(b: Buffer, i: number): number {
  if (b[i] === MINUS) i++;
  let c = b[i];
  if (c === 0x30) i++;
  else if (c >= 0x31 && c <= 0x39) {
    do c = b[++i];
    while (c >= 0x30 && c <= 0x39);
  } else return -1;
  if (b[i] === 0x2e) {
    c = b[++i];
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    do c = b[++i];
    while (c >= 0x30 && c <= 0x39);
  }
  c = b[i];
  if (c === 0x65 || c === 0x45) {
    c = b[++i];
    if (c === 0x2b || c === MINUS) c = b[++i];
    if (!(c >= 0x30 && c <= 0x39)) return -1;
    do c = b[++i];
    while (c >= 0x30 && c <= 0x39);
  }
  return i;
}

/** The value of the valid JSON number in `b[start, end)`, as JSON.parse gives it. */
export function numberValue(b: Buffer, start: number, end: number): number {
  // Up to 15 digits, no fraction or exponent: exact in a double, no string needed (HTTP codes).
  if (end - start <= 15) {
    let n = 0;
    let k = b[start] === MINUS ? start + 1 : start;
    for (; k < end; k++) {
      const d = b[k] - 0x30;
      if (d < 0 || d > 9) break;
      n = n * 10 + d;
    }
    if (k === end) return b[start] === MINUS ? -n : n;
  }
  return Number(b.toString('latin1', start, end));
}

/** Index after `true`, `false` or `null` at `i`, or -1. */
export function literalEnd(b: Buffer, i: number): number {
  const c = b[i];
  if (c === 0x74) return b[i + 1] === 0x72 && b[i + 2] === 0x75 && b[i + 3] === 0x65 ? i + 4 : -1;
  if (c === 0x66) return b[i + 1] === 0x61 && b[i + 2] === 0x6c && b[i + 3] === 0x73 && b[i + 4] === 0x65 ? i + 5 : -1;
  if (c === 0x6e) return b[i + 1] === 0x75 && b[i + 2] === 0x6c && b[i + 3] === 0x6c ? i + 4 : -1;
  return -1;
}

/** The text of a string whose content (quotes excluded) has escapes, as JSON.parse decodes it. */
export function unescape(b: Buffer, start: number, end: number): string {
  let out = '';
  let from = start;
  let i = start;
  while (i < end) {
    if (b[i] !== BACKSLASH) {
      i++;
      continue;
    }
    if (i > from) out += b.toString('utf8', from, i);
    const e = b[i + 1];
    if (e === 0x75) {
      // A lone surrogate stays as it is, as JSON.parse keeps it; a pair joins up in the string.
      out += String.fromCharCode((HEX[b[i + 2]] << 12) | (HEX[b[i + 3]] << 8) | (HEX[b[i + 4]] << 4) | HEX[b[i + 5]]);
      i += 6;
    } else {
      out += ESCAPES[e];
      i += 2;
    }
    from = i;
  }
  if (end > from) out += b.toString('utf8', from, end);
  return out;
}
