import { forEachFrame } from '../framing/octet.js';
import type { Batch } from '../batch.js';

/** One NATS message of a batch: the RFC 5424 message as sent over TCP, without its octet count. */
export interface NatsMessage {
  body: Uint8Array;
  /** Nats-Msg-Id: the same every time the same line is sent; undefined when nothing stable names it (stdin). */
  msgId: string | undefined;
  /** The k8s-audit structured data as NATS headers (Audit-ID, Audit-Stage, ...), when asked for. */
  headers: Array<[string, string]> | undefined;
}

/** SD-PARAM names of the k8s-audit element (src/transforms/k8s-header.ts) and the header each becomes. */
const HEADER_NAMES: Record<string, string> = {
  auditID: 'Audit-ID',
  stage: 'Audit-Stage',
  verb: 'Audit-Verb',
  user: 'Audit-User',
  resource: 'Audit-Resource',
  subresource: 'Audit-Subresource',
  namespace: 'Audit-Namespace',
  name: 'Audit-Name',
  code: 'Audit-Code',
  sourceIP: 'Audit-Source-IP',
};

const headerName = (param: string) => HEADER_NAMES[param] ?? `Audit-${param.replace(/([a-z])([A-Z])/g, '$1-$2').replace(/^./, (c) => c.toUpperCase())}`;

/**
 * The batch's messages. Ids: the batch's keys (a file's line offsets) when it has them; else, for an
 * audit event, its auditID and stage, which name it whichever way it came (the webhook). `sdId`:
 * the k8s-audit SD-ID whose params become headers; undefined for raw lines.
 */
export function natsMessages(batch: Batch, sdId: string | undefined): NatsMessage[] {
  const out: NatsMessage[] = [];
  const { keys } = batch;
  // The client holds a message's bytes by reference until it can write them (while reconnecting, for
  // long); by then the batch may have been handed on or spilled and its memory reused. One copy per batch.
  const frames = Buffer.from(batch.frames);
  let repeat = 0;
  forEachFrame(frames, (start, end) => {
    const i = out.length;
    const body = frames.subarray(start, end);
    const params = sdId === undefined ? undefined : sdParams(body, sdId);
    let msgId: string | undefined;
    if (keys && i < keys.offsets.length) {
      // A line that made more than one message repeats its offset: the k-th of them gets #k.
      repeat = i > 0 && keys.offsets[i - 1] === keys.offsets[i] ? repeat + 1 : 0;
      msgId = keys.prefix + keys.offsets[i] + (repeat > 0 ? `#${repeat}` : '');
    } else if (params?.auditID && params.stage) {
      msgId = `${params.auditID}:${params.stage}`;
    }
    const headers = params ? Object.entries(params).map(([k, v]): [string, string] => [headerName(k), v.replace(/[\r\n]/g, ' ')]) : undefined;
    out.push({ body, msgId, headers });
  });
  return out;
}

/** Skips the six header fields (PRI+VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID) to the SD. */
function sdStart(msg: Buffer): number {
  let at = 0;
  for (let n = 0; n < 6; n++) {
    at = msg.indexOf(0x20, at);
    if (at < 0) return -1;
    at++;
  }
  return at;
}

/**
 * The params of the SD-ELEMENT `sdId` of an RFC 5424 message, unescaped (\" \\ \]), or undefined.
 * Reads only what auditfwd's framer writes; anything unexpected ends the search.
 */
export function sdParams(msg: Buffer, sdId: string): Record<string, string> | undefined {
  let at = sdStart(msg);
  if (at < 0) return undefined;
  while (msg[at] === 0x5b /* [ */) {
    const idEnd = indexOfAny(msg, at + 1, 0x20, 0x5d);
    if (idEnd < 0) return undefined;
    const id = msg.toString('utf8', at + 1, idEnd);
    const params: Record<string, string> = {};
    at = idEnd;
    while (msg[at] === 0x20) {
      const eq = msg.indexOf(0x3d /* = */, at);
      if (eq < 0 || msg[eq + 1] !== 0x22) return undefined;
      const name = msg.toString('utf8', at + 1, eq);
      let i = eq + 2;
      const parts: number[] = [];
      for (; i < msg.length && msg[i] !== 0x22; i++) {
        if (msg[i] === 0x5c && i + 1 < msg.length) i++;
        parts.push(msg[i]);
      }
      if (i >= msg.length) return undefined;
      params[name] = Buffer.from(parts).toString('utf8');
      at = i + 1;
    }
    if (msg[at] !== 0x5d) return undefined;
    if (id === sdId) return params;
    at++;
  }
  return undefined;
}

function indexOfAny(buf: Buffer, from: number, a: number, b: number): number {
  for (let i = from; i < buf.length; i++) if (buf[i] === a || buf[i] === b) return i;
  return -1;
}
