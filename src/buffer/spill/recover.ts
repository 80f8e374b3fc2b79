import { join } from 'node:path';
import type { Logger } from '../../telemetry/log.js';
import { FIRST_SEQ, listSegments, readCursor, segName } from './files.js';
import type { Ledger } from './ledger.js';
import type { SegmentReader } from './reader.js';
import type { SegmentWriter } from './writer.js';

/**
 * What the earlier run wrote and had not fsynced (it was killed) is made durable before this run
 * commits anything: its sources may have skipped those lines for this boot only (a soft position,
 * Batch.onSpilled), and a position this run commits past them must not outlive them at a power loss.
 */
async function syncLeftOver(ledger: Ledger, log: Logger): Promise<void> {
  const unread = ledger.segs.filter((s) => !s.removed && s.readOff < s.size);
  for (const seg of unread) {
    try {
      const f = await ledger.io.open(ledger.path(seg), 'read');
      try {
        await f.sync();
      } finally {
        await f.close();
      }
    } catch (err) {
      // One that cannot be opened (a link put in its place) is given up by the reader anyway.
      log.warn({ segment: ledger.path(seg), err: String(err) }, 'cannot fsync a spill segment left by an earlier run');
    }
  }
  if (unread.length > 0) await ledger.io.syncDir(ledger.dir);
}

/**
 * Finds what an earlier run left: its segments, how far each was handed on (the cursor), and a
 * torn record at the end of the last one. The cursor is left to be saved again without entries
 * of segments that are gone (their names are never reused in a run, but a later run starts
 * numbering after what it finds).
 */
export async function recover(ledger: Ledger, reader: SegmentReader, writer: SegmentWriter, log: Logger): Promise<void> {
  const { io, dir } = ledger;
  const cursor = await readCursor(io, dir);
  for (const seq of await listSegments(io, dir)) {
    const seg = ledger.newSegment(seq, await io.size(join(dir, segName(seq))));
    if (seg.size === 0) {
      await io.unlink(ledger.path(seg));
      continue;
    }
    const acked = cursor.get(seq) ?? 0;
    if (acked <= seg.size) seg.readOff = seg.acked = acked;
    ledger.segs.push(seg);
    writer.maxSeq = Math.max(writer.maxSeq, seq);
    ledger.diskBytes += seg.size;
    ledger.unread += seg.size - seg.readOff;
  }
  const segs = ledger.segs;
  const last = segs[segs.length - 1];
  if (last) await reader.cutTornTail(last);
  writer.minSeq = Math.min(FIRST_SEQ, ...segs.map((s) => s.seq));
  ledger.cursorDirty = true;
  for (const seg of [...segs]) ledger.maybeRemove(seg);
  await syncLeftOver(ledger, log);
  if (segs.length > 0) log.info({ dir, segments: segs.length, bytes: ledger.unread }, 'spill from an earlier run found; it is sent first');
}
