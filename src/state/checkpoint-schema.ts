import { FINGERPRINT_BYTES } from './file-identity.js';
import type { Checkpoint } from './checkpoints.js';
import { validSoft } from './soft-position.js';

/** Hex digits of a fingerprint (fingerprintOf: the first 128 bits of a SHA-256). */
const FP_HEX = 32;
/** Longer than any path the kernel accepts (PATH_MAX). */
const MAX_PATH = 4096;

/** The version written. Version 1 (no `size`, no `retired`) still loads. */
export const CHECKPOINT_VERSION = 2;

/** The file is not a checkpoint file at all (no known `version` and `files` list): set aside whole. */
export class CheckpointFormatError extends Error {}

export interface LoadedCheckpoints {
  entries: Checkpoint[];
  /** Files read that are gone (version 2): a .gz made of one of them is known by its first bytes. */
  retired: Checkpoint[];
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
  if (e.size !== undefined && !count(e.size)) return 'size is not a non-negative integer';
  if (e.tail !== undefined && !(typeof e.tail === 'string' && e.tail.length === FP_HEX && /^[0-9a-f]+$/.test(e.tail))) return `tail is not ${FP_HEX} lowercase hex digits`;
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
  const known = d !== null && typeof d === 'object' && !Array.isArray(d) && (d.version === 1 || d.version === CHECKPOINT_VERSION);
  if (!known || !Array.isArray(d.files)) throw new CheckpointFormatError(`not a version 1 or ${CHECKPOINT_VERSION} checkpoint file`);
  const dropped: string[] = [];
  const valid = (list: unknown[], what: string): Checkpoint[] => {
    const out: Checkpoint[] = [];
    list.forEach((c: unknown, i: number) => {
      const why = problem(c);
      if (why) {
        dropped.push(`${what} ${i}: ${why}`);
        return;
      }
      const e = c as Checkpoint;
      // A soft position that is not well formed is only a missed shortcut: the durable offset stays.
      const soft = validSoft(e.soft, e.offset);
      out.push({ path: e.path, dev: e.dev, ino: e.ino, fpLen: e.fpLen, fp: e.fp, offset: e.offset, updatedAt: e.updatedAt, ...(e.size !== undefined ? { size: e.size } : {}), ...(e.tail !== undefined ? { tail: e.tail } : {}), ...(soft && { soft }) });
    });
    return out;
  };
  const entries = valid(d.files, 'entry');
  const r = (d as { retired?: unknown }).retired;
  const retired = Array.isArray(r) ? valid(r, 'retired entry') : [];
  if (r !== undefined && !Array.isArray(r)) dropped.push('retired: not a list');
  return { entries, retired, dropped };
}
