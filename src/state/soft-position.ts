import { readFileSync } from 'node:fs';

/**
 * A read position whose lines are in the spill file but maybe not on the disk yet (written, not
 * fsynced): good after a kill -9 in the same boot (the page cache outlived the process, and the next
 * run sends the record), lost at a power loss. So it is kept beside the durable offset, never in its
 * place, with the boot it holds for: a later boot resumes from the durable offset (lines repeated,
 * none lost).
 */
export interface SoftPosition {
  offset: number;
  /** Hash of the bytes before `offset`, as Checkpoint.tail. */
  tail?: string;
  /** /proc/sys/kernel/random/boot_id of the boot it was written in. */
  boot: string;
  /** When it was committed: Checkpoint.updatedAt of the position. */
  at: number;
}

const BOOT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const HASH = /^[0-9a-f]{32}$/;
const count = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** This boot's id; undefined where the kernel does not say (then no soft positions are written or used). */
export function readBootId(path = '/proc/sys/kernel/random/boot_id'): string | undefined {
  try {
    const id = readFileSync(path, 'utf8').trim();
    return BOOT_ID.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}

/** The soft field of a stored entry if it is well formed and ahead of `offset`; anything else is ignored. */
export function validSoft(v: unknown, offset: number): SoftPosition | undefined {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return undefined;
  const s = v as Record<string, unknown>;
  if (!count(s.offset) || (s.offset as number) <= offset || !count(s.at)) return undefined;
  if (typeof s.boot !== 'string' || !BOOT_ID.test(s.boot)) return undefined;
  if (s.tail !== undefined && !(typeof s.tail === 'string' && HASH.test(s.tail))) return undefined;
  return { offset: s.offset as number, ...(s.tail !== undefined && { tail: s.tail as string }), boot: s.boot, at: s.at as number };
}

interface WithSoft {
  offset: number;
  tail?: string;
  updatedAt: number;
  size?: number;
  soft?: SoftPosition;
}

/**
 * The entry as the sources see it: resumed from its soft position when that holds in `boot`, from
 * its durable offset otherwise; without the soft field either way.
 */
export function effective<E extends WithSoft>(c: E, boot: string | undefined): E {
  if (!c.soft) return c;
  // eslint-disable-next-line @typescript-eslint/no-unused-vars
  const { soft, tail, ...rest } = c;
  if (boot === undefined || soft.boot !== boot) return { ...rest, ...(tail !== undefined && { tail }) } as E;
  return { ...rest, offset: soft.offset, updatedAt: soft.at, size: Math.max(c.size ?? 0, soft.offset), ...(soft.tail !== undefined && { tail: soft.tail }) } as E;
}
