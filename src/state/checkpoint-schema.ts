import { FINGERPRINT_BYTES } from './file-identity.js';
import type { Checkpoint } from './checkpoints.js';

/** Hex digits of a fingerprint (fingerprintOf: the first 128 bits of a SHA-256). */
const FP_HEX = 32;
/** Longer than any path the kernel accepts (PATH_MAX). */
const MAX_PATH = 4096;

/** The file is not a checkpoint file at all (no `version: 1` and `files` list): set aside whole. */
export class CheckpointFormatError extends Error {}

export interface LoadedCheckpoints {
  entries: Checkpoint[];
  /** One line per dropped entry: which one and what was wrong, never the file's bytes. */
  dropped: string[];
}

const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Why an entry cannot be used, or undefined when every field is in range. */
function problem(c: unknown): string | undefined {
  if (c === null || typeof c !== 'object' || Array.isArray(c)) return 'not an object';
  const e = c as Record<string, unknown>;
  if (typeof e.path !== 'string' || e.path === '' || e.path.length > MAX_PATH || e.path.includes('\0')) return 'path is not a file path';
  for (const k of ['dev', 'ino', 'offset', 'updatedAt'] as const) if (!count(e[k])) return `${k} is not a non-negative integer`;
  if (!count(e.fpLen) || (e.fpLen as number) > FINGERPRINT_BYTES) return `fpLen is not an integer from 0 to ${FINGERPRINT_BYTES}`;
  const fpOk = e.fpLen === 0 ? e.fp === '' : typeof e.fp === 'string' && e.fp.length === FP_HEX && /^[0-9a-f]+$/.test(e.fp);
  if (!fpOk) return e.fpLen === 0 ? 'fp must be empty when fpLen is 0' : `fp is not ${FP_HEX} lowercase hex digits`;
  return undefined;
}

/**
 * Validates a parsed checkpoints.json. Each entry is checked on its own: one damaged entry is
 * dropped (that file is read as if never seen) and the others still count; a file that is not a
 * checkpoint file at all throws CheckpointFormatError.
 */
export function validateCheckpoints(doc: unknown): LoadedCheckpoints {
  const d = doc as { version?: unknown; files?: unknown } | null;
  if (d === null || typeof d !== 'object' || Array.isArray(d) || d.version !== 1 || !Array.isArray(d.files)) {
    throw new CheckpointFormatError('not a version 1 checkpoint file');
  }
  const entries: Checkpoint[] = [];
  const dropped: string[] = [];
  d.files.forEach((c: unknown, i: number) => {
    const why = problem(c);
    if (why) {
      dropped.push(`entry ${i}: ${why}`);
      return;
    }
    const e = c as Checkpoint;
    entries.push({ path: e.path, dev: e.dev, ino: e.ino, fpLen: e.fpLen, fp: e.fp, offset: e.offset, updatedAt: e.updatedAt });
  });
  return { entries, dropped };
}
