import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { untilTrue } from './ops.js';
import { BIN, cleanEnv, runAuditfwd } from './proc.js';
import { parseRfc5424, splitOctetCounted, type SyslogMessage } from './rfc5424.js';
import { auditLines, numberedAuditLines } from './fixtures.js';

interface TestLike {
  teardown(fn: () => unknown): void;
}

/**
 * The input every interop case sends: real audit events, numbered so each arrives identifiable,
 * plus long lines (100+ KB, built from real events; one beyond the default --max-message-bytes, so
 * the truncated form must arrive intact too) and lines with non-ASCII UTF-8 in real event fields.
 */
export function interopLines(count = 400): string[] {
  const lines = numberedAuditLines(count);
  const sample = auditLines();
  const long = (seq: number, minBytes: number) => {
    const items: string[] = [];
    let size = 0;
    for (let k = 0; size < minBytes; k++) {
      items.push(sample[k % sample.length]);
      size += sample[k % sample.length].length + 1;
    }
    return `{"seq":${seq},"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${items.join(',')}]}`;
  };
  const utf8 = (seq: number, name: string) => {
    const ev = JSON.parse(sample[seq % sample.length]) as Record<string, unknown> & { user?: Record<string, unknown> };
    ev.user = { ...(ev.user ?? {}), username: name, groups: ['système:authentifiés', 'группа', '組織'] };
    return `{"seq":${seq},` + JSON.stringify(ev).slice(1);
  };
  lines.push(long(count, 100_000), long(count + 1, 120_000), long(count + 2, 127_000));
  lines.push(long(count + 3, 150_000)); // beyond the default --max-message-bytes (128 KiB): truncated
  lines.push(utf8(count + 4, 'jörg.müller@例え.jp'), utf8(count + 5, 'Ωμέγα 🚀 “quoted” ‘ü’'), utf8(count + 6, 'ñandú\u00a0nbsp'));
  // The three characters a PARAM-VALUE must escape, for --format k8s-audit (the user goes into SD).
  lines.push(utf8(count + 7, 'system:serviceaccount:ns:"odd"]name\\with\\backslashes'));
  lines.push(...numberedAuditLines(count + 20).slice(count + 8)); // and ordinary lines after them
  return lines;
}

/** What auditfwd itself frames for `input` with `args` (`--to -`), parsed by the independent parser. */
export function expectedMessages(t: TestLike, args: string[], input: string): Promise<SyslogMessage[]> {
  // Cases of one file share it: each process start costs time on a busy CI machine.
  const key = JSON.stringify(args) + '\0' + input;
  let p = expectedCache.get(key);
  if (!p) expectedCache.set(key, (p = frameWithAuditfwd(t, args, input)));
  return p;
}

const expectedCache = new Map<string, Promise<SyslogMessage[]>>();

async function frameWithAuditfwd(t: TestLike, args: string[], input: string): Promise<SyslogMessage[]> {
  const run = runAuditfwd(t, ['--to', '-', '--log-level', 'warn', ...args], { stdin: input });
  const code = await run.exited;
  if (code !== 0) throw new Error(`auditfwd --to - exited with ${code}: ${run.stderr()}`);
  const { frames, rest } = splitOctetCounted(run.stdout());
  if (rest.length) throw new Error('auditfwd --to - left a partial frame');
  return frames.map((f) => parseRfc5424(f));
}

/** The fields a server wrote for one message (as parsed by that server). */
export interface ReceivedFields {
  pri: number;
  timestamp: string | null;
  hostname: string | null;
  appName: string | null;
  procId: string | null;
  msgId: string | null;
  /** STRUCTURED-DATA as the server renders it, or null for none. */
  sd: string | null;
  /** SD-ID → PARAM-NAME → value, as the server's own SD parser made it (when configured to). */
  sdParsed?: Record<string, Record<string, string>>;
  msg: Buffer;
}

/** Servers write the NILVALUE as "-" (rsyslog) or as an empty value (syslog-ng). */
export const nil = (v: unknown): string | null => (v === undefined || v === null || v === '' || v === '-' ? null : String(v));

/** One JSON object per line, keys pri ts host app procid msgid sd msg (see the server templates). */
export function readJsonLines(file: string): ReceivedFields[] {
  if (!existsSync(file)) return [];
  const text = readFileSync(file, 'utf8');
  const lines = text.split('\n');
  lines.pop(); // the last, not yet complete line (or the empty string after the final LF)
  return lines.map((l) => {
    const o = JSON.parse(l) as Record<string, string | number>;
    return {
      pri: Number(o.pri),
      timestamp: nil(o.ts),
      hostname: nil(o.host),
      appName: nil(o.app),
      procId: nil(o.procid),
      msgId: nil(o.msgid),
      sd: nil(o.sd),
      // rsyslog mmpstrucdata's tree as JSON text, or syslog-ng's .SDATA.* pairs as an object.
      sdParsed: typeof o.sdp === 'string' && o.sdp !== '' ? JSON.parse(o.sdp) : (o._SDATA as unknown as ReceivedFields['sdParsed']),
      msg: Buffer.from(String(o.msg ?? ''), 'utf8'),
    };
  });
}

/**
 * Waits until `read()` returns at least `n` messages, polling the server's output file (a server
 * has no signal for "written"); fails after `timeoutMs` with what arrived so far.
 */
export async function waitForMessages(read: () => ReceivedFields[], n: number, timeoutMs: number, log: () => string): Promise<ReceivedFields[]> {
  let got = read();
  await untilTrue(() => (got = read()).length >= n, () => `only ${got.length} of ${n} messages arrived within ${timeoutMs} ms; server log: ${log()}`, timeoutMs);
  return got;
}

/** An RFC 3339 timestamp as microseconds since the epoch, so two renderings of one instant compare equal. */
export function instantMicros(ts: string): bigint {
  const m = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})$/.exec(ts);
  if (!m) throw new Error(`not an RFC 3339 timestamp: ${ts}`);
  const seconds = BigInt(Date.parse(`${m[1]}${m[3] === 'Z' ? 'Z' : m[3]}`) / 1000);
  const frac = (m[2] ?? '').padEnd(6, '0');
  if (/[1-9]/.test(frac.slice(6))) throw new Error(`more than microsecond precision: ${ts}`);
  return seconds * 1_000_000n + BigInt(frac.slice(0, 6));
}

/** SD as the server renders it, parsed back with the independent parser (wrapped in a minimal header). */
export function parseSd(sd: string | null): SyslogMessage['sd'] {
  if (sd === null) return [];
  return parseRfc5424(Buffer.from(`<14>1 - - - - - ${sd}`, 'utf8')).sd;
}

interface Assert {
  equal(found: unknown, wanted: unknown, message?: string): void;
  same(found: unknown, wanted: unknown, message?: string): void;
  ok(v: unknown, message?: string): void;
  fail(message?: string): void;
}

export interface CompareOptions {
  /**
   * Raw mode stamps the time auditfwd read the line, so it differs from the `--to -` run: the
   * server's timestamp must then lie within [from, to] (epoch ms) instead of matching exactly.
   */
  timestampWindow?: { from: number; to: number };
  /** Messages whose timestamp must match exactly even with a window (k8s-audit: the event's time). */
  exactTimestamp?: (sent: SyslogMessage) => boolean;
  /** Also compare the SD params as the server's own SD parser split them. */
  sdParsed?: boolean;
}

/**
 * Compares, message by message and field by field, what a server parsed with what auditfwd sent.
 * One assertion per field kind over all messages keeps the output short; the first difference is named.
 */
export function compareFields(t: Assert, got: ReceivedFields[], want: SyslogMessage[], opts: CompareOptions = {}): void {
  t.equal(got.length, want.length, 'every message arrived, none twice');
  const n = Math.min(got.length, want.length);
  const firstDiff = (name: string, f: (g: ReceivedFields, w: SyslogMessage) => string | undefined) => {
    for (let i = 0; i < n; i++) {
      const d = f(got[i], want[i]);
      if (d !== undefined) return t.fail(`${name} of message ${i} differs: ${d}`);
    }
    t.ok(true, `${name}: all ${n} equal`);
  };
  const cmp = (a: unknown, b: unknown) => (a === b ? undefined : `got ${JSON.stringify(a)}, sent ${JSON.stringify(b)}`);
  firstDiff('PRI', (g, w) => cmp(g.pri, w.pri));
  firstDiff('HOSTNAME', (g, w) => cmp(g.hostname, w.hostname));
  firstDiff('APP-NAME', (g, w) => cmp(g.appName, w.appName));
  firstDiff('PROCID', (g, w) => cmp(g.procId, w.procId));
  firstDiff('MSGID', (g, w) => cmp(g.msgId, w.msgId));
  firstDiff('STRUCTURED-DATA', (g, w) => {
    const a = JSON.stringify(parseSd(g.sd));
    const b = JSON.stringify(w.sd);
    return a === b ? undefined : `got ${a.slice(0, 300)}, sent ${b.slice(0, 300)}`;
  });
  if (opts.sdParsed) {
    firstDiff('STRUCTURED-DATA params (the server\'s own SD parser)', (g, w) => {
      const a = g.sdParsed ?? {};
      const b = Object.fromEntries(w.sd.map((e) => [e.id, Object.fromEntries(e.params)]));
      return sameTree(a, b) ? undefined : `got ${JSON.stringify(a).slice(0, 300)}, sent ${JSON.stringify(b).slice(0, 300)}`;
    });
  }
  firstDiff('MSG (exact bytes)', (g, w) => {
    if (g.msg.equals(w.msg)) return undefined;
    let k = 0;
    while (k < g.msg.length && g.msg[k] === w.msg[k]) k++;
    return `got ${g.msg.length} bytes, sent ${w.msg.length}; first difference at byte ${k}: ${JSON.stringify(g.msg.subarray(k, k + 40).toString())} vs ${JSON.stringify(w.msg.subarray(k, k + 40).toString())}`;
  });
  const window = opts.timestampWindow;
  firstDiff(window ? 'TIMESTAMP (within the run, to the microsecond)' : 'TIMESTAMP (same instant)', (g, w) => {
    if (g.timestamp === null || w.timestamp === null) return cmp(g.timestamp, w.timestamp);
    const got = instantMicros(g.timestamp);
    if (!window || opts.exactTimestamp?.(w)) return got === instantMicros(w.timestamp) ? undefined : cmp(g.timestamp, w.timestamp);
    // auditfwd stamps from a monotonic clock kept within 2 ms of the wall clock (src/clock.ts).
    const from = BigInt(window.from - 1000) * 1000n;
    const to = BigInt(window.to + 1000) * 1000n;
    if (got < from || got > to) return `${g.timestamp} is outside the run`;
    // The microseconds auditfwd sends must survive the server (not be cut to milliseconds).
    return /\.\d{6}(Z|[+-])/.test(g.timestamp) ? undefined : `${g.timestamp} lost the microseconds`;
  });
}

/** Equal objects of strings, key order aside (servers render SD params in their own order). */
function sameTree(a: unknown, b: unknown): boolean {
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return a === b;
  const ka = Object.keys(a).sort();
  const kb = Object.keys(b).sort();
  return ka.length === kb.length && ka.every((k, i) => k === kb[i] && sameTree((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]));
}

let helpText: string | undefined;

/** Whether `bin/auditfwd --help` mentions `what` (features merged from other branches). */
export function auditfwdSupports(what: RegExp): boolean {
  // `env -u NODE_OPTIONS`: the test runner re-adds its loaders to a child's environment, which breaks Node 26.
  helpText ??= spawnSync('env', ['-u', 'NODE_OPTIONS', BIN, '--help'], { env: cleanEnv(), encoding: 'utf8' }).stdout ?? '';
  return what.test(helpText);
}

/** Why openssl cannot make test certificates here, or undefined. */
export function opensslMissing(): string | undefined {
  const r = spawnSync('openssl', ['version'], { encoding: 'utf8' });
  return r.status === 0 ? undefined : 'openssl not found (Debian package openssl)';
}

/** A CA and a server certificate for 127.0.0.1/localhost, made with openssl in `dir`. */
export function makeCertificates(dir: string): { ca: string; cert: string; key: string } {
  const run = (args: string[]) => {
    const r = spawnSync('openssl', args, { cwd: dir, encoding: 'utf8' });
    if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.stderr}`);
  };
  run(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca-key.pem', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=auditfwd interop test CA']);
  run(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'server-key.pem', '-out', 'server.csr', '-subj', '/CN=localhost']);
  writeFileSync(join(dir, 'server.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n');
  run(['x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca-key.pem', '-CAcreateserial', '-out', 'server.pem', '-days', '2', '-extfile', 'server.ext']);
  return { ca: join(dir, 'ca.pem'), cert: join(dir, 'server.pem'), key: join(dir, 'server-key.pem') };
}
