import { SETTINGS } from './options.js';

/** Flags naming a file that holds a secret: a mistyped value there may be the secret itself. */
const SECRET_FILE_FLAGS = new Set(SETTINGS.filter((s) => s.secret).map((s) => s.flag));

/**
 * How an error names the file a flag gave: as given, except for a secret's file when the value
 * does not look like a path (no "/"): then it may be the secret typed in the wrong place.
 */
export function shownPath(flag: string, path: string): string {
  return SECRET_FILE_FLAGS.has(flag) && !path.includes('/') ? 'the file it names (not shown: it does not look like a path)' : path;
}
