import { FrameWriter } from '../../framing/frame-writer.js';
import { sdElement, type Rfc5424Framer } from '../../framing/rfc5424.js';
import type { Origin } from './disk-record.js';

/** SD-ID of gap records; 32473 is the private enterprise number RFC 5612 reserves for documentation. */
export const GAP_SD_ID = 'gap@32473';

/** A contiguous run of dropped bytes of one source. */
export interface GapRange {
  source: string;
  start: number;
  end: number;
  /** -1 when not known (bytes never read cannot be counted in lines). */
  lines: number;
  bytes: number;
}

/**
 * Adds up what was dropped, one range per contiguous stretch of a source, so that the gap records
 * account for every dropped line and byte exactly.
 */
export class GapLedger {
  private ranges: GapRange[] = [];

  get empty(): boolean {
    return this.ranges.length === 0;
  }

  /** `bytes` counts the frames when the source offsets are not known. */
  add(origin: Origin | undefined, lines: number, frameBytes: number): void {
    const bytes = origin ? origin.end - origin.start : frameBytes;
    this.merge({ source: origin?.source ?? 'unknown', start: origin?.start ?? -1, end: origin?.end ?? -1, lines, bytes });
  }

  /** Ranges taken and then not sent after all: they come before those added since, merged with them. */
  restore(older: GapRange[]): void {
    const newer = this.ranges;
    this.ranges = older.map((r) => ({ ...r }));
    for (const r of newer) this.merge(r);
  }

  private merge(range: GapRange): void {
    let last: GapRange | undefined;
    for (let i = this.ranges.length - 1; i >= 0 && !last; i--) if (this.ranges[i].source === range.source) last = this.ranges[i];
    if (last && range.start >= 0 && last.end === range.start) {
      last.end = range.end;
      last.lines += range.lines;
      last.bytes += range.bytes;
      return;
    }
    this.ranges.push(range);
  }

  take(): GapRange[] {
    return this.ranges.splice(0);
  }
}

/** One RFC 5424 message per range: MSGID "gap", the numbers in structured data and in the text. */
export function gapFrames(framer: Rfc5424Framer, ranges: GapRange[], reason: string): { frames: Buffer; count: number } {
  const out = new FrameWriter(1024);
  framer.beginBatch();
  for (const r of ranges) {
    const where = r.start >= 0 ? ` at offsets ${r.start}-${r.end}` : '';
    const what = r.lines >= 0 ? `${r.lines} lines (${r.bytes} bytes)` : `${r.bytes} bytes`;
    const text = `auditfwd dropped ${what} of ${r.source}${where}: ${reason}`;
    const params: Array<[string, string]> = [['source', r.source], ...(r.lines >= 0 ? [['lines', String(r.lines)] as [string, string]] : []), ['bytes', String(r.bytes)]];
    if (r.start >= 0) params.push(['from', String(r.start)], ['to', String(r.end)]);
    params.push(['reason', reason]);
    framer.append(out, Buffer.from(text), undefined, { msgId: 'gap', structuredData: sdElement(GAP_SD_ID, params) });
  }
  return { frames: out.take(), count: ranges.length };
}
