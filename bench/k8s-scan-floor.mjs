#!/usr/bin/env node
// What the k8s-audit scanner's walk costs against floors for any walk that visits every string of the
// event (issue 15): ns per real event (1.3 KB), this thread's CPU time, median (best) of N rounds,
// contenders alternated. The floors are not scanners: they find where strings are and check nothing
// else, so a scanner built their way costs at least that much.
// Usage: npm run build && node bench/k8s-scan-floor.mjs [lines=50000] [runs=9]
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { repeatedAuditLines } from './lib/input.mjs';

const root = fileURLToPath(new URL('..', import.meta.url));
const total = Number(process.argv[2] ?? 50_000);
const runCount = Number(process.argv[3] ?? 9);
const { EventScanner } = await import(join(root, 'dist/transforms/k8s-scan.js'));
const { sample, text, lines } = repeatedAuditLines(total);

// The JavaScript walk alone, and the scanner as auditfwd runs it (the fast path of k8s-scan.c first).
const sc = new EventScanner(false);
const withFast = new EventScanner();
const bytes = Buffer.allocUnsafeSlow(1 << 20);
const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
const copy = (line) => {
  bytes.set(line, 0);
  bytes.fill(0, line.length, line.length + 16);
  return line.length;
};
// The scanner's SWAR test (k8s-scan.ts): top bit of each byte that is '"', '\' or a control.
const special = (x) => {
  const y = x ^ 0x02020202;
  const e = x ^ 0x5c5c5c5c;
  return (((y - 0x21212121) & ~y) | ((e - 0x01010101) & ~e)) & 0x80808080;
};

/** Quote to quote, strings four bytes at a time as stringEnd does, the bytes between strings one by one; nothing else checked. */
function swarStrings(line) {
  const len = copy(line);
  const b = bytes;
  let n = 0;
  let i = 0;
  for (;;) {
    while (b[i] !== 0x22) if (i++ >= len) return n;
    let p = i + 1;
    for (;;) {
      let hits = special(view.getInt32(p, true));
      while (hits === 0) hits = special(view.getInt32((p += 4), true));
      p += (31 - Math.clz32(hits & -hits)) >> 3;
      if (b[p] === 0x22) break;
      if (b[p] !== 0x5c) return -1;
      p += 2;
    }
    i = p + 1;
    n++;
  }
}

/** Quote to quote with Buffer#indexOf (memchr in C++), escapes not even looked at. */
function indexOfQuotes(line) {
  let n = 0;
  for (let i = 0; ; n++) {
    const q = line.indexOf(0x22, i);
    if (q < 0) return n >> 1;
    i = q + 1;
  }
}

// The same walk as swarStrings in WebAssembly SIMD, 16 bytes per step (hand-assembled: no toolchain
// is needed to run the bench). Exports mem and strings(len) -> number of strings, or -1.
function wasmStrings() {
  const uleb = (n) => { const o = []; do { let b = n & 0x7f; n >>>= 7; if (n) b |= 0x80; o.push(b); } while (n); return o; };
  const sleb = (n) => { const o = []; for (;;) { const b = n & 0x7f; n >>= 7; if ((n === 0 && !(b & 0x40)) || (n === -1 && b & 0x40)) return [...o, b]; o.push(b | 0x80); } };
  const vec = (items) => [...uleb(items.length), ...items.flat()];
  const section = (id, b) => [id, ...uleb(b.length), ...b];
  const name = (s) => vec([...Buffer.from(s)].map((x) => [x]));
  const [LEN, I, N, M, P, C, Q, BS, CTL, V] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const get = (x) => [0x20, x], set = (x) => [0x21, x], tee = (x) => [0x22, x], k = (n) => [0x41, ...sleb(n)];
  const [block, loop, if_, end, br, br_if, ret] = [[0x02, 0x40], [0x03, 0x40], [0x04, 0x40], [0x0b], (l) => [0x0c, l], (l) => [0x0d, l], [0x0f]];
  const [load8, eqz, eq, lt_u, ge_u, add, ctz] = [[0x2d, 0, 0], [0x45], [0x46], [0x49], [0x4f], [0x6a], [0x68]];
  const [vload, splat, veq, vlt_u, vor, bitmask] = [[0xfd, 0, 0, 0], [0xfd, 0x0f], [0xfd, 0x23], [0xfd, 0x26], [0xfd, 0x50], [0xfd, 0x64]];
  const body = [
    ...k(0x22), ...splat, ...set(Q), ...k(0x5c), ...splat, ...set(BS), ...k(0x20), ...splat, ...set(CTL),
    ...loop, ...block, ...loop, // find the opening quote
    ...get(I), ...vload, ...get(Q), ...veq, ...bitmask, ...tee(M), ...br_if(1),
    ...get(I), ...k(16), ...add, ...tee(I), ...get(LEN), ...lt_u, ...br_if(0), ...end,
    ...get(N), ...ret, ...end,
    ...get(I), ...get(M), ...ctz, ...add, ...tee(I), ...get(LEN), ...ge_u, ...if_, ...get(N), ...ret, ...end,
    ...get(I), ...k(1), ...add, ...set(I),
    ...loop, // the string: the first quote, backslash or control in 16 bytes
    ...get(I), ...vload, ...set(V),
    ...get(V), ...get(Q), ...veq, ...get(V), ...get(BS), ...veq, ...vor, ...get(V), ...get(CTL), ...vlt_u, ...vor, ...bitmask, ...tee(M),
    ...eqz, ...if_, ...get(I), ...k(16), ...add, ...set(I), ...br(1), ...end,
    ...get(I), ...get(M), ...ctz, ...add, ...tee(P), ...load8, ...tee(C), ...k(0x22), ...eq,
    ...if_, ...get(P), ...k(1), ...add, ...set(I), ...get(N), ...k(1), ...add, ...set(N), ...br(2), ...end,
    ...get(C), ...k(0x5c), ...eq, ...if_, ...get(P), ...k(2), ...add, ...set(I), ...br(1), ...end,
    ...k(-1), ...ret, ...end, ...end, ...get(N),
  ];
  const code = [...vec([[5, 0x7f], [4, 0x7b]]), ...body, 0x0b];
  const mod = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0,
    ...section(1, vec([[0x60, 1, 0x7f, 1, 0x7f]])), ...section(3, vec([[0]])), ...section(5, vec([[0, 2]])),
    ...section(7, vec([[...name('strings'), 0, 0], [...name('mem'), 2, 0]])), ...section(10, vec([[...uleb(code.length), ...code]]))]);
  const { strings, mem } = new WebAssembly.Instance(new WebAssembly.Module(mod)).exports;
  const u8 = new Uint8Array(mem.buffer);
  return function wasmSimdStrings(line) {
    u8.set(line, 0);
    u8.fill(0, line.length, line.length + 32);
    return strings(line.length);
  };
}

const contenders = {
  'copy of the line only': copy,
  'scanner: scan(), the JavaScript walk': (l) => (sc.scan(l) ? 1 : 0),
  'scanner: scan() with the WebAssembly fast path (k8s-scan.c)': (l) => (withFast.scan(l) ? 1 : 0),
  'scanner: validation only (the whole line through valueEnd, no field picked)': (l) => {
    sc.bytes.set(l, 0);
    sc.bytes.fill(0, l.length, l.length + 12);
    return sc.valueEnd(sc.bytes, 0) === l.length ? 1 : 0;
  },
  'floor: strings only, SWAR as the scanner': swarStrings,
  'floor: strings only, Buffer#indexOf quote to quote': indexOfQuotes,
  'floor: strings only, WebAssembly SIMD 16 bytes': wasmStrings(),
};
for (const l of sample.map((x) => Buffer.from(x))) {
  if (contenders['floor: strings only, WebAssembly SIMD 16 bytes'](l) !== swarStrings(l)) throw new Error('the Wasm walk counts other strings than the JS one');
}
sc.scan(lines.reduce((a, l) => (l.length > a.length ? l : a))); // sizes its buffer for the longest line
for (const f of Object.values(contenders)) for (const l of lines) f(l); // warm-up
const results = {};
for (let r = 0; r < runCount; r++) {
  for (const [name, f] of Object.entries(contenders)) {
    const t0 = process.cpuUsage();
    let sink = 0;
    for (const l of lines) sink += f(l);
    const u = process.cpuUsage(t0);
    if (sink <= 0) throw new Error(`${name}: nothing found`);
    (results[name] ??= []).push(((u.user + u.system) * 1000) / lines.length);
  }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
console.log(`${total} real audit lines, ${(text.length / total).toFixed(0)} bytes each on average; ns per line, median (best) of ${runCount}`);
for (const [name, xs] of Object.entries(results)) console.log(`${median(xs).toFixed(0).padStart(6)} (${Math.min(...xs).toFixed(0)})  ${name}`);
