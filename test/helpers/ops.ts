import { parseRfc5424 } from './rfc5424.js';
import { seqOf } from './fixtures.js';

export { freePort } from './net.js';

/** Polls `probe` until it returns a value (not undefined), or fails after `timeoutMs`. */
export async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe().catch(() => undefined);
    if (v !== undefined) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Polls a synchronous `cond` every 20 ms (e.g. a server's output file, which gives no event) until it holds; fails after `timeoutMs` with `why()`. */
export async function untilTrue(cond: () => boolean, why: () => string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(why());
    await new Promise((r) => setTimeout(r, 20));
  }
}

export async function get(url: string): Promise<{ status: number; text: string }> {
  const res = await fetch(url);
  return { status: res.status, text: await res.text() };
}

/** Prometheus text → "name{a="b"}" → value. */
export function parseMetrics(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const m = /^(\S+?(?:\{.*\})?) (\S+)$/.exec(line);
    if (!m) throw new Error(`not a sample line: ${line}`);
    out.set(m[1], Number(m[2]));
  }
  return out;
}

/** The port auditfwd logged for --metrics-listen HOST:0. */
export function opsPort(stderr: string): number {
  const m = /"address":"[^"]*:(\d+)","msg":"serving \/metrics/.exec(stderr);
  if (!m) throw new Error('no metrics address in the log');
  return Number(m[1]);
}

/** auditfwd's JSON log lines (stderr), parsed. */
export function logEntries(stderr: string): Array<Record<string, unknown>> {
  return stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

/** The "seq" of each numbered audit line a drain received (see numberedAuditLines), in arrival order. */
export function seqsOf(messages: Buffer[]): number[] {
  return messages.map((m) => seqOf(parseRfc5424(m).msg.toString()));
}
