import { readdir, stat } from 'node:fs/promises';
import { join, resolve, sep } from 'node:path';
import { looksRotated } from './rotated.js';

const MAGIC = /[*?[]/;

export function hasGlob(pattern: string): boolean {
  return MAGIC.test(pattern);
}

/**
 * One path segment's glob as a RegExp: `*` any run of characters, `?` one character, `[abc]`,
 * `[a-z]`, `[!abc]` a class. Never crosses a `/`. A leading `.` must be matched literally, as in a shell.
 */
export function segmentRegExp(segment: string): RegExp {
  let re = '';
  for (let i = 0; i < segment.length; i++) {
    const c = segment[i];
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '[') {
      const close = segment.indexOf(']', i + 2);
      if (close === -1) {
        re += '\\[';
        continue;
      }
      let body = segment.slice(i + 1, close);
      const negate = body[0] === '!' || body[0] === '^';
      if (negate) body = body.slice(1);
      re += `[${negate ? '^' : ''}${body.replace(/[\\\]^]/g, '\\$&')}]`;
      i = close;
    } else re += c.replace(/[.+^${}()|\\]/g, '\\$&');
  }
  if (segment[0] !== '.') re = `(?!\\.)${re}`;
  return new RegExp(`^${re}$`);
}

/**
 * The files a pattern names now, absolute and sorted. A pattern without glob characters names itself
 * (whether or not it exists: it is waited for). Glob matches are regular files only, and names that
 * look like rotated backups (`audit-2026-11-22T10-00-00.000.log`, `x.log.1`, `x.gz`) are left out: they
 * are read as the continuation of the file they were rotated from, not as files of their own.
 */
export async function expand(pattern: string, limit = Infinity): Promise<string[]> {
  const abs = resolve(pattern);
  if (!hasGlob(abs)) return [abs];
  const segments = abs.split(sep).filter((s) => s !== '');
  let dirs: string[] = [sep];
  for (let i = 0; i < segments.length - 1; i++) {
    const seg = segments[i];
    if (!hasGlob(seg)) {
      dirs = dirs.map((d) => join(d, seg));
      continue;
    }
    const re = segmentRegExp(seg);
    const next: string[] = [];
    for (const d of dirs) {
      for (const name of await names(d)) {
        if (!re.test(name)) continue;
        const p = join(d, name);
        if ((await stat(p).catch(() => undefined))?.isDirectory()) next.push(p);
      }
    }
    dirs = next;
  }
  const last = segments[segments.length - 1];
  const re = hasGlob(last) ? segmentRegExp(last) : undefined;
  const out: string[] = [];
  for (const d of dirs.sort()) {
    const candidates = re ? (await names(d)).filter((n) => re.test(n) && !looksRotated(n)).sort() : [last];
    for (const name of candidates) {
      const p = join(d, name);
      if (!(await stat(p).catch(() => undefined))?.isFile()) continue;
      out.push(p);
      if (out.length >= limit) return out;
    }
  }
  return out;
}

async function names(dir: string): Promise<string[]> {
  try {
    return await readdir(dir);
  } catch {
    return [];
  }
}
