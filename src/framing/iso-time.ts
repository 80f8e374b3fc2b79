/**
 * Date#toISOString without a Date. V8 sets up its date cache, time zone included, at the first
 * date it breaks into fields, UTC or not; with ICU that reads 0.6 MB of ICU's time-zone data into
 * the process's RSS, for a forwarder that only ever writes UTC (docs/design.md, "No Date").
 */

const MS_PER_DAY = 86_400_000;
/** The most milliseconds from the epoch a Date holds (ECMA-262 TimeClip). */
const MAX_MS = 8.64e15;

const pad2 = (n: number): string => (n < 10 ? '0' + n : String(n));

/**
 * `new Date(ms).toISOString()`, byte for byte: `YYYY-MM-DDTHH:MM:SS.mmmZ`, or a signed six-digit
 * year outside 0000-9999. Throws RangeError where toISOString does (not finite, beyond ±8.64e15).
 */
export function isoTime(epochMs: number): string {
  const ms = Math.trunc(epochMs) + 0; // TimeClip: towards zero; + 0 makes -0 zero
  if (!(Math.abs(ms) <= MAX_MS)) throw new RangeError('Invalid time value');
  const days = Math.floor(ms / MS_PER_DAY);
  let rest = ms - days * MS_PER_DAY;
  // Civil date from days since 1970-01-01, proleptic Gregorian, in eras of 400 years
  // (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days).
  const z = days + 719_468;
  const era = Math.floor(z / 146_097);
  const doe = z - era * 146_097;
  const yoe = Math.floor((doe - Math.floor(doe / 1460) + Math.floor(doe / 36_524) - Math.floor(doe / 146_096)) / 365);
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const day = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const month = mp < 10 ? mp + 3 : mp - 9;
  const year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  const milli = rest % 1000;
  rest = (rest - milli) / 1000;
  const sec = rest % 60;
  rest = (rest - sec) / 60;
  const min = rest % 60;
  const hour = (rest - min) / 60;
  const y =
    year >= 0 && year <= 9999 ? String(year).padStart(4, '0') : (year < 0 ? '-' : '+') + String(Math.abs(year)).padStart(6, '0');
  return `${y}-${pad2(month)}-${pad2(day)}T${pad2(hour)}:${pad2(min)}:${pad2(sec)}.${String(milli).padStart(3, '0')}Z`;
}
