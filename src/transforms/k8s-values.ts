import { isoTime } from '../framing/iso-time.js';
import { sdValue } from '../framing/rfc5424.js';

/** How an audit event's values become header and SD text: its time as RFC 5424 wants it, and bounded SD values. */

/** Longest SD PARAM-VALUE in UTF-8 bytes: Kubernetes names are at most 253; usernames are unbounded. */
export const MAX_SD_VALUE_BYTES = 256;

const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?([Zz]|([+-])(\d{2}):(\d{2}))$/;

/**
 * An RFC 3339 time as RFC 5424 wants it: UTC, at most 6 fraction digits (extra digits are cut,
 * not rounded, so a time never moves into the next second), no leap second. Undefined when the
 * text is not a time.
 */
export function normaliseTimestamp(text: unknown): string | undefined {
  if (typeof text !== 'string') return undefined;
  const m = RFC3339.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s, frac = '', z, sign, oh, om] = m;
  if (+mo < 1 || +mo > 12 || +d < 1 || +d > 31 || +h > 23 || +mi > 59 || +s > 60 || +oh > 23 || +om > 59) return undefined;
  const fraction = frac ? '.' + frac.slice(0, 6) : '';
  const sec = Math.min(+s, 59); // a leap second is not allowed in RFC 5424
  if ((z === 'Z' || z === 'z') && sec === +s) return `${y}-${mo}-${d}T${h}:${mi}:${s}${fraction}Z`;
  const offsetMs = sign ? (sign === '-' ? -1 : 1) * (+oh * 60 + +om) * 60_000 : 0;
  const ms = Date.UTC(+y, +mo - 1, +d, +h, +mi, sec) - offsetMs;
  if (!Number.isFinite(ms)) return undefined;
  const iso = isoTime(ms); // YYYY-MM-DDTHH:MM:SS.000Z, or ±YYYYYY for far years
  if (iso.length !== 24) return undefined;
  return iso.slice(0, 19) + fraction + 'Z';
}

/** A PARAM-VALUE of at most MAX_SD_VALUE_BYTES, escaped by sdValue. */
export function sdText(v: string): string {
  let out = v;
  if (out.length * 3 > MAX_SD_VALUE_BYTES) {
    const b = Buffer.from(out);
    if (b.length > MAX_SD_VALUE_BYTES) {
      let keep = MAX_SD_VALUE_BYTES;
      // Cut on a character boundary so the value stays valid UTF-8.
      while (keep > 0 && (b[keep] & 0xc0) === 0x80) keep--;
      out = b.subarray(0, keep).toString('utf8');
    }
  }
  return sdValue(out);
}
