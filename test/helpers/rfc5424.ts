/**
 * A strict RFC 5424 parser for tests, written from the RFC's ABNF (section 6) and independent of
 * src/framing: it rejects anything the grammar does not allow.
 */
export interface SdElement {
  id: string;
  params: Array<[string, string]>;
}

export interface SyslogMessage {
  pri: number;
  facility: number;
  severity: number;
  version: number;
  timestamp: string | null;
  hostname: string | null;
  appName: string | null;
  procId: string | null;
  msgId: string | null;
  sd: SdElement[];
  msg: Buffer;
}

class ParseError extends Error {}

const isPrintUsAscii = (c: number) => c >= 33 && c <= 126;

export function parseRfc5424(buf: Buffer): SyslogMessage {
  let i = 0;
  const fail = (what: string): never => {
    throw new ParseError(`${what} at byte ${i}: ${JSON.stringify(buf.subarray(Math.max(0, i - 10), i + 20).toString('latin1'))}`);
  };
  const expect = (c: number, what: string) => {
    if (buf[i] !== c) fail(`expected ${what}`);
    i++;
  };
  // PRI = "<" PRIVAL ">", PRIVAL = 1*3DIGIT ; range 0 .. 191
  expect(0x3c, '<');
  const priStart = i;
  while (buf[i] >= 0x30 && buf[i] <= 0x39) i++;
  const priText = buf.subarray(priStart, i).toString('latin1');
  if (priText.length < 1 || priText.length > 3 || (priText.length > 1 && priText[0] === '0')) fail('bad PRIVAL');
  const pri = Number(priText);
  if (pri > 191) fail('PRIVAL out of range');
  expect(0x3e, '>');
  // VERSION = NONZERO-DIGIT 0*2DIGIT
  if (!(buf[i] >= 0x31 && buf[i] <= 0x39)) fail('bad VERSION');
  const version = buf[i++] - 0x30;
  expect(0x20, 'SP after VERSION');

  const field = (max: number, name: string): string | null => {
    const start = i;
    while (i < buf.length && buf[i] !== 0x20) {
      if (!isPrintUsAscii(buf[i])) fail(`non-PRINTUSASCII in ${name}`);
      i++;
    }
    const text = buf.subarray(start, i).toString('latin1');
    if (text.length === 0) fail(`empty ${name}`);
    if (text.length > max) fail(`${name} longer than ${max}`);
    expect(0x20, `SP after ${name}`);
    return text === '-' ? null : text;
  };

  const timestamp = field(64, 'TIMESTAMP');
  if (timestamp !== null && !validTimestamp(timestamp)) fail(`bad TIMESTAMP ${timestamp}`);
  const hostname = field(255, 'HOSTNAME');
  const appName = field(48, 'APP-NAME');
  const procId = field(128, 'PROCID');
  const msgId = field(32, 'MSGID');

  const sd: SdElement[] = [];
  if (buf[i] === 0x2d) {
    i++;
  } else {
    if (buf[i] !== 0x5b) fail('expected STRUCTURED-DATA');
    while (buf[i] === 0x5b) {
      i++;
      const id = sdName('SD-ID');
      const params: Array<[string, string]> = [];
      while (buf[i] === 0x20) {
        i++;
        const name = sdName('PARAM-NAME');
        expect(0x3d, '=');
        expect(0x22, '"');
        const bytes: number[] = [];
        for (;;) {
          if (i >= buf.length) fail('unterminated PARAM-VALUE');
          const c = buf[i];
          if (c === 0x5c && (buf[i + 1] === 0x22 || buf[i + 1] === 0x5c || buf[i + 1] === 0x5d)) {
            bytes.push(buf[i + 1]);
            i += 2;
            continue;
          }
          if (c === 0x22) break;
          if (c === 0x5d) fail('unescaped ] in PARAM-VALUE');
          bytes.push(c);
          i++;
        }
        i++;
        const value = Buffer.from(bytes);
        if (!isUtf8(value)) fail('PARAM-VALUE not UTF-8');
        params.push([name, value.toString('utf8')]);
      }
      expect(0x5d, ']');
      sd.push({ id, params });
    }
  }
  let msg = Buffer.alloc(0);
  if (i < buf.length) {
    expect(0x20, 'SP before MSG');
    msg = buf.subarray(i);
    if (msg[0] === 0xef && msg[1] === 0xbb && msg[2] === 0xbf && !isUtf8(msg.subarray(3))) fail('BOM before bytes that are not UTF-8');
  }
  return { pri, facility: pri >> 3, severity: pri & 7, version, timestamp, hostname, appName, procId, msgId, sd, msg };

  function sdName(what: string): string {
    const start = i;
    while (isPrintUsAscii(buf[i]) && buf[i] !== 0x3d && buf[i] !== 0x5d && buf[i] !== 0x22 && buf[i] !== 0x20) i++;
    const n = buf.subarray(start, i).toString('latin1');
    if (n.length < 1 || n.length > 32) fail(`bad ${what}`);
    return n;
  }
}

/** FULL-DATE "T" FULL-TIME per RFC 5424 6.2.3 (RFC 3339 with at most 6 fraction digits, no leap second). */
function validTimestamp(ts: string): boolean {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})$/.exec(ts);
  if (!m) return false;
  const [, , mo, d, h, mi, s] = m.map(Number);
  return mo >= 1 && mo <= 12 && d >= 1 && d <= 31 && h <= 23 && mi <= 59 && s <= 59;
}

function isUtf8(b: Buffer): boolean {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
}

/** Splits an RFC 6587 octet-counted stream; throws on a framing error. Returns the rest (a partial frame). */
export function splitOctetCounted(stream: Buffer): { frames: Buffer[]; rest: Buffer } {
  const frames: Buffer[] = [];
  let i = 0;
  while (i < stream.length) {
    const sp = stream.indexOf(0x20, i);
    if (sp === -1) break;
    const lenText = stream.subarray(i, sp).toString('latin1');
    if (!/^[1-9]\d*$/.test(lenText)) throw new Error(`bad octet count ${JSON.stringify(lenText)} at ${i}`);
    const len = Number(lenText);
    if (sp + 1 + len > stream.length) break;
    frames.push(stream.subarray(sp + 1, sp + 1 + len));
    i = sp + 1 + len;
  }
  return { frames, rest: stream.subarray(i) };
}
