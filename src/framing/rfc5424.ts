import { isUtf8 } from 'node:buffer';
import { FrameWriter } from './frame-writer.js';
import { isoTime } from './iso-time.js';
import { wallMicros } from '../clock.js';

/** RFC 5424 section 6: header field maximum lengths. */
export const MAX_HOSTNAME = 255;
export const MAX_APP_NAME = 48;
export const MAX_PROCID = 128;
export const MAX_MSGID = 32;
export const MAX_SD_NAME = 32;

export const FACILITIES: Record<string, number> = {
  kern: 0, user: 1, mail: 2, daemon: 3, auth: 4, syslog: 5, lpr: 6, news: 7, uucp: 8, cron: 9,
  authpriv: 10, ftp: 11, ntp: 12, audit: 13, alert: 14, clock: 15,
  local0: 16, local1: 17, local2: 18, local3: 19, local4: 20, local5: 21, local6: 22, local7: 23,
};
export const SEVERITIES: Record<string, number> = {
  emerg: 0, alert: 1, crit: 2, err: 3, warning: 4, notice: 5, info: 6, debug: 7,
};

const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

/** PRINTUSASCII (33..126) only, cut to `max`; an empty result is the NILVALUE. */
export function headerField(value: string | undefined, max: number): string {
  if (!value) return '-';
  let out = '';
  for (let i = 0; i < value.length && out.length < max; i++) {
    const c = value.charCodeAt(i);
    out += c >= 33 && c <= 126 ? value[i] : '_';
  }
  return out;
}

/** SD-NAME: PRINTUSASCII except '=', SP, ']' and '"', at most 32 characters. */
export function sdName(value: string): string {
  let out = '';
  for (let i = 0; i < value.length && out.length < MAX_SD_NAME; i++) {
    const c = value.charCodeAt(i);
    out += c >= 33 && c <= 126 && c !== 61 && c !== 93 && c !== 34 ? value[i] : '_';
  }
  return out || '_';
}

const CONTROL = /[\u0000-\u001f\u007f]/; // eslint-disable-line no-control-regex
const CONTROLS = /[\u0000-\u001f\u007f]/g; // eslint-disable-line no-control-regex
const SD_SPECIAL = /["\\\]]/;
const SD_SPECIALS = /["\\\]]/g;

/**
 * PARAM-VALUE: '"', '\' and ']' escaped with a backslash (RFC 5424 section 6.3.3), control characters
 * made spaces (they would break LF framing downstream). Tests before replacing: most values need
 * nothing, and k8s-audit mode runs this nine times per event.
 */
export function sdValue(value: string): string {
  const out = CONTROL.test(value) ? value.replace(CONTROLS, ' ') : value;
  return SD_SPECIAL.test(out) ? out.replace(SD_SPECIALS, '\\$&') : out;
}

export type SdParams = ReadonlyArray<readonly [name: string, value: string]>;

/** One SD-ELEMENT; values are escaped here, names and the id made valid. */
export function sdElement(id: string, params: SdParams): string {
  let out = '[' + sdName(id);
  for (const [name, value] of params) out += ' ' + sdName(name) + '="' + sdValue(value) + '"';
  return out + ']';
}

/** RFC 3339 in UTC with microseconds, e.g. 2026-11-23T10:00:00.123456Z. */
export function timestampMicros(epochMicros: number): string {
  const ms = Math.floor(epochMicros / 1000);
  const iso = isoTime(ms); // 2026-11-23T10:00:00.123Z
  const micros = String(Math.floor(epochMicros) % 1000).padStart(3, '0');
  return iso.slice(0, 23) + micros + 'Z';
}

export interface HeaderOptions {
  facility: number;
  severity: number;
  hostname: string;
  appName: string;
  procId?: string;
  /** Largest syslog message (header + MSG), framing excluded; longer lines are truncated. */
  maxMessageBytes: number;
  /** Encoded SD-ELEMENTs every message carries (e.g. BOSH's instance@47450), before any per-message ones. */
  structuredData?: string;
}

/** What a transform may set per message; anything left out comes from the defaults. */
export interface MessageMeta {
  /** Already an RFC 3339 timestamp. */
  timestamp?: string;
  msgId?: string;
  /** Already encoded SD-ELEMENTs, e.g. from sdElement(). */
  structuredData?: string;
}

export interface AppendResult {
  truncated: boolean;
}

/**
 * Formats lines as RFC 5424 messages with RFC 6587 octet-counting framing ("LEN SP MSG"), the one
 * internal wire form: every sink sends it as it is or derives its own framing from it.
 */
export class Rfc5424Framer {
  private readonly pri: string;
  private readonly hostname: string;
  private readonly appName: string;
  private readonly procId: string;
  private readonly max: number;
  private readonly sd: string;
  private batchTimestamp = '';
  private defaultHeader: Buffer = Buffer.alloc(0);

  constructor(opts: HeaderOptions) {
    this.pri = `<${opts.facility * 8 + opts.severity}>1 `;
    this.hostname = headerField(opts.hostname, MAX_HOSTNAME);
    this.appName = headerField(opts.appName, MAX_APP_NAME);
    this.procId = headerField(opts.procId, MAX_PROCID);
    this.max = opts.maxMessageBytes;
    this.sd = opts.structuredData ?? '';
    this.beginBatch();
  }

  /** Lines read together share one reception timestamp; the header is built once for them. */
  beginBatch(epochMicros = wallMicros()): void {
    this.batchTimestamp = timestampMicros(epochMicros);
    this.defaultHeader = Buffer.from(this.header(this.batchTimestamp, '-', this.sd || '-'));
  }

  private header(timestamp: string, msgId: string, sd: string): string {
    return `${this.pri}${timestamp} ${this.hostname} ${this.appName} ${this.procId} ${msgId} ${sd} `;
  }

  /**
   * Appends one framed message. `originalLength` is the line's length before the line splitter cut
   * it (it keeps at most maxMessageBytes of a line, so memory stays bounded).
   */
  append(out: FrameWriter, line: Buffer, originalLength = line.length, meta?: MessageMeta): AppendResult {
    const header = meta
      ? Buffer.from(
          this.header(
            meta.timestamp ?? this.batchTimestamp,
            headerField(meta.msgId, MAX_MSGID),
            this.sd + (meta.structuredData ?? '') || '-',
          ),
        )
      : this.defaultHeader;
    return this.appendWithHeader(out, header, line, originalLength);
  }

  /**
   * The parts of the header around TIMESTAMP and MSGID, for encoders that write headers as bytes:
   * `<PRI>1 `, ` HOSTNAME APP-NAME PROCID ` and the SD-ELEMENTs every message carries.
   */
  get parts(): { pri: string; middle: string; sd: string } {
    return { pri: this.pri, middle: ` ${this.hostname} ${this.appName} ${this.procId} `, sd: this.sd };
  }

  /** The reception time of the lines of this batch, the TIMESTAMP of lines that have none of their own. */
  get batchTime(): string {
    return this.batchTimestamp;
  }

  /** Appends one framed message whose header (with its trailing SP) is `header`. */
  appendWithHeader(out: FrameWriter, header: Buffer, line: Buffer, originalLength = line.length): AppendResult {
    const headerLength = header.length;
    let msg = line;
    // MSG-ANY may be any octets but must not start with a BOM; a BOM is only valid before UTF-8.
    if (msg.length >= 3 && msg[0] === 0xef && msg[1] === 0xbb && msg[2] === 0xbf && !isUtf8(msg)) {
      msg = msg.subarray(BOM.length);
    }
    const fits = headerLength + msg.length <= this.max && originalLength === line.length;
    if (fits) {
      out.decimal(headerLength + msg.length);
      out.byte(0x20);
      out.bytes(header);
      out.bytes(msg);
      return { truncated: false };
    }
    const marker = Buffer.from(` [truncated by auditfwd: ${originalLength} bytes]`, 'latin1');
    let keep = Math.max(0, Math.min(msg.length, this.max - headerLength - marker.length));
    // Cut on a UTF-8 character boundary so valid text stays valid.
    while (keep > 0 && keep < msg.length && (msg[keep] & 0xc0) === 0x80) keep--;
    out.decimal(headerLength + keep + marker.length);
    out.byte(0x20);
    out.bytes(header);
    out.bytes(msg, 0, keep);
    out.bytes(marker);
    return { truncated: true };
  }
}
