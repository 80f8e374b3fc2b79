import { closeSync, constants, fstatSync, openSync, readSync } from 'node:fs';
import { createRequire } from 'node:module';
import type * as Yaml from 'yaml';
import type { Node, Pair } from 'yaml';
import { ConfigError } from './errors.js';
import { camel, fileKeyOf, SETTINGS } from './options.js';

/**
 * yaml is loaded on first use, only with --config or --check-config: loaded at start it cost every
 * run 1.6-2.6 MB of RSS (bench/README.md, RSS). Its `node` export is CommonJS, so require is the same module.
 */
let yamlModule: typeof Yaml | undefined;
const yaml = (): typeof Yaml => (yamlModule ??= createRequire(import.meta.url)('yaml') as typeof Yaml);

/**
 * The config file: every flag is a key (`--state-dir` → `state_dir`), so a setting added to the table
 * (options.ts) is accepted in the file with no further work. The keys and their types come from
 * OPTION_TABLE, built from that table.
 */

/** The flags, their types and aliases. */
export interface OptionTable {
  key: Record<string, unknown>;
  boolean: string[];
  array: string[];
  number: string[];
  alias: Record<string, string[]>;
}

export const OPTION_TABLE: OptionTable = {
  key: Object.fromEntries(SETTINGS.flatMap((s) => [s.flag, ...(s.alias ? [s.alias] : [])]).map((k) => [k, true])),
  boolean: SETTINGS.filter((s) => s.kind === 'boolean').map((s) => s.flag),
  array: SETTINGS.filter((s) => s.kind === 'list').map((s) => s.flag),
  number: [],
  alias: Object.fromEntries(SETTINGS.filter((s) => s.alias).map((s) => [s.flag, [s.alias!]])),
};

/** Flags that mean nothing inside a file: --help, --version, and the table's without a file key. */
const NOT_IN_FILE = new Set(['help', 'version', ...SETTINGS.filter((s) => s.fileKey === null).map((s) => s.flag)]);
const BY_FLAG = new Map(SETTINGS.map((s) => [s.flag, s]));
/** Flags whose file form may also be a structure; each turns it into the flag's values. */
const STRUCTURED: Record<string, (value: Record<string, unknown>) => string[]> = Object.fromEntries(
  SETTINGS.filter((s) => s.fromMapping).map((s) => [s.flag, s.fromMapping!]),
);

/**
 * Keys whose values are secrets: never printed nor logged. A key matches when its name contains
 * one of these; a value that holds PEM private-key material is redacted whatever its key.
 */
export const SECRET_KEYS = [/pass(word|phrase)/i, /token/i, /secret/i, /credential/i, /private/i];
const SECRET_VALUES = [/-----BEGIN [A-Z ]*PRIVATE KEY-----/];
export const REDACTED = '<redacted>';

export function redact(key: string, value: unknown): unknown {
  if (value === undefined || value === null) return value;
  // `--webhook-token-file`, `--key-passphrase-file`: where the secret is, which an operator needs to see.
  const namesAPath = /[-_]?file$/i.test(key);
  if (!namesAPath && SECRET_KEYS.some((re) => re.test(key))) return REDACTED;
  const text = Array.isArray(value) ? value.join('\n') : String(value);
  return SECRET_VALUES.some((re) => re.test(text)) ? REDACTED : value;
}

export const fileKey = (flag: string) => {
  const s = BY_FLAG.get(flag);
  return (s && fileKeyOf(s)) ?? flag.replace(/-/g, '_');
};

/** The flags (long names, no aliases) a file may set, in declaration order. */
export function fileFlags(options: OptionTable): string[] {
  const aliases = new Set(Object.values(options.alias).flat());
  return Object.keys(options.key).filter((k) => !aliases.has(k) && !NOT_IN_FILE.has(k) && !/[A-Z]/.test(k));
}

/** Far above any real configuration; keeps a SIGHUP reload (synchronous) short whatever the file holds. */
export const MAX_CONFIG_BYTES = 1024 * 1024;
/** Problems listed one by one; the rest are counted in one more line. */
const MAX_ERRORS = 20;

export interface FileSettings {
  path: string;
  /** Settings by RawSettings key (camelCase), converted to what the flag would give. */
  values: Record<string, unknown>;
  /** Where each setting was written: "FILE:LINE: key". */
  where: Map<string, string>;
  errors: string[];
  /** The file could not be read as settings at all: its errors are the only ones worth showing. */
  unreadable?: boolean;
}

/** Reads a YAML (or JSON: YAML's subset) config file; every problem is collected, none thrown. */
export function loadConfigFile(path: string, options: OptionTable): FileSettings {
  const out: FileSettings = { path, values: {}, where: new Map(), errors: [] };
  let text: string;
  try {
    text = readConfigText(path);
  } catch (err) {
    out.errors.push(`--config: cannot read ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
    out.unreadable = true;
    return out;
  }
  const { isMap, isScalar, LineCounter, parseDocument } = yaml();
  const lines = new LineCounter();
  // Keys are checked for duplicates below, in one pass: yaml's own check compares every pair with every other.
  const doc = parseDocument(text, { lineCounter: lines, uniqueKeys: false, prettyErrors: false });
  const at = (node: Node | null | undefined) => `${path}:${node?.range ? lines.linePos(node.range[0]).line : 1}`;
  // After the first syntax error the rest are mostly its echoes.
  const syntax = doc.errors[0];
  if (syntax) out.errors.push(`${path}:${syntax.linePos?.[0].line ?? 1}: ${syntax.message.split('\n')[0]}`);
  if (out.errors.length) return { ...out, unreadable: true };
  if (doc.contents === null || (isScalar(doc.contents) && doc.contents.value === null)) return out;
  if (!isMap(doc.contents)) {
    out.errors.push(`${at(doc.contents)}: the file must be a mapping of settings (key: value)`);
    return { ...out, unreadable: true };
  }
  duplicateKeys(doc.contents, at, out.errors);
  const known = new Map<string, string>();
  for (const flag of fileFlags(options)) {
    known.set(fileKey(flag), flag);
    known.set(flag.replace(/-/g, '_'), flag);
  }
  const knownKeys = [...known.keys()];
  const types = { boolean: new Set(options.boolean), array: new Set(options.array), number: new Set(options.number) };
  for (const pair of doc.contents.items as Pair<Node, Node>[]) {
    const key = isScalar(pair.key) ? String(pair.key.value) : String(pair.key);
    const loc = `${at(pair.key)}: ${key}`;
    const flag = known.get(key.replace(/-/g, '_'));
    if (!flag) {
      // Suggestions only for what will be shown: each costs a distance to every known key.
      out.errors.push(`${loc}: unknown key${out.errors.length < MAX_ERRORS ? suggest(key, knownKeys) : ''}`);
      continue;
    }
    const value = pair.value?.toJSON() as unknown;
    if (value === null || value === undefined) continue; // "key:" with nothing: not set
    const converted = convert(value, flag, types, pair.value, loc, at, out.errors);
    if (converted === undefined) continue;
    out.values[camel(flag)] = converted;
    out.where.set(camel(flag), loc);
  }
  return out;
}

/** At most MAX_ERRORS problems, then one line saying how many more (a file of 40,000 typos is one mistake). */
export function capErrors(errors: string[], path: string): string[] {
  return errors.length <= MAX_ERRORS ? errors : [...errors.slice(0, MAX_ERRORS), `${path}: ${errors.length - MAX_ERRORS} more problems not shown`];
}

/** The file's text; a FIFO, a device or a huge file is refused before anything is read. */
function readConfigText(path: string): string {
  const fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new Error('not a regular file');
    if (st.size > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    const buf = Buffer.alloc(MAX_CONFIG_BYTES + 1);
    let n = 0;
    for (let got = 1; got > 0 && n < buf.length; n += got) got = readSync(fd, buf, n, buf.length - n, null);
    if (n > MAX_CONFIG_BYTES) throw new Error(`larger than ${MAX_CONFIG_BYTES} bytes`);
    return buf.toString('utf8', 0, n);
  } finally {
    closeSync(fd);
  }
}

/** A key given twice in any mapping, found in one pass (a Set per mapping). */
function duplicateKeys(root: Node, at: (n: Node | null | undefined) => string, errors: string[]): void {
  const { isScalar, visit } = yaml();
  visit(root, {
    Map(_, map) {
      const seen = new Set<unknown>();
      for (const pair of map.items as Pair<Node, Node>[]) {
        const key = isScalar(pair.key) ? pair.key.value : String(pair.key);
        if (seen.has(key)) errors.push(`${at(pair.key)}: ${String(key)}: given twice`);
        seen.add(key);
      }
    },
  });
}

function convert(
  value: unknown,
  flag: string,
  types: { boolean: Set<string>; array: Set<string>; number: Set<string> },
  node: Node | null | undefined,
  loc: string,
  at: (n: Node | null | undefined) => string,
  errors: string[],
): unknown {
  const scalar = (v: unknown, where: string): string | number | undefined => {
    if (typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v))) return v;
    errors.push(`${where}: must be a ${types.number.has(flag) ? 'number' : 'string'}, not ${describe(v)}`);
    return undefined;
  };
  const structured = (v: Record<string, unknown>, where: string): string[] | undefined => {
    try {
      return STRUCTURED[flag](v);
    } catch (err) {
      errors.push(`${where}: ${(err as Error).message}`);
      return undefined;
    }
  };
  if (STRUCTURED[flag] && value && typeof value === 'object' && !Array.isArray(value)) return structured(value as Record<string, unknown>, loc);
  if (types.boolean.has(flag)) {
    if (typeof value === 'boolean') return value;
    errors.push(`${loc}: must be true or false, not ${describe(value)}`);
    return undefined;
  }
  if (types.array.has(flag)) {
    const items = Array.isArray(value) ? value : [value];
    const itemNodes = yaml().isSeq(node) ? (node.items as Node[]) : [];
    const result: string[] = [];
    let ok = true;
    items.forEach((item, i) => {
      const where = Array.isArray(value) ? `${at(itemNodes[i] ?? node)}: ${loc.slice(loc.lastIndexOf(': ') + 2)}[${i}]` : loc;
      if (STRUCTURED[flag] && item && typeof item === 'object' && !Array.isArray(item)) {
        const specs = structured(item as Record<string, unknown>, where);
        if (specs) result.push(...specs);
        else ok = false;
      } else {
        const s = scalar(item, where);
        if (s !== undefined) result.push(String(s));
        else ok = false;
      }
    });
    return ok ? result : undefined;
  }
  const s = scalar(value, loc);
  return s === undefined ? undefined : types.number.has(flag) ? Number(s) : String(s);
}

/** The value's type only: a secret typed into the wrong key must not be echoed. */
function describe(v: unknown): string {
  if (Array.isArray(v)) return 'a list';
  if (v === null) return 'null';
  if (typeof v === 'object') return 'a mapping';
  return typeof v === 'boolean' ? 'true or false' : `a ${typeof v}`;
}

function suggest(key: string, known: string[]): string {
  if (key.length > 64) return '';
  const near = known.filter((k) => distance(k, key) <= 2);
  return near.length ? ` (did you mean ${near[0]}?)` : '';
}

function distance(a: string, b: string): number {
  const d = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array<number>(b.length).fill(0)]);
  for (let j = 1; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++) d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
  return d[a.length][b.length];
}

/** Flags win: a file setting is used only where no flag was given. */
export function mergeUnderFlags<T extends Record<string, unknown>>(parsed: T, file: FileSettings | undefined): T {
  if (!file) return parsed;
  const merged: Record<string, unknown> = { ...parsed };
  for (const [k, v] of Object.entries(file.values)) {
    if (merged[k] === undefined) merged[k] = v;
    else file.where.delete(k);
  }
  return merged as T;
}

/** Settings resolveConfig needs to go on looking for more errors after one in them. */
const PLACEHOLDERS: Record<string, unknown> = { to: '-' };

/**
 * Runs `resolve` and gathers every error instead of the first: after each ConfigError the setting
 * it names is set back to its default (or a placeholder) and `resolve` runs again. Errors about a
 * setting from the file name the file, line and key instead of the flag.
 */
export function resolveCollecting<C>(raw: Record<string, unknown>, resolve: (raw: Record<string, unknown>) => C, where: Map<string, string>): { cfg?: C; errors: string[] } {
  const work = { ...raw };
  const errors: string[] = [];
  for (let round = 0; round <= Object.keys(work).length + 1; round++) {
    try {
      const cfg = resolve(work);
      return errors.length ? { errors } : { cfg, errors };
    } catch (err) {
      if (!(err instanceof ConfigError)) throw err;
      const m = /^--([a-z0-9-]+)(:?)\s*(.*)$/s.exec(err.message);
      const key = m ? camel(m[1]) : undefined;
      const loc = key && where.get(key);
      const message = loc && m ? `${loc}: ${m[3]}` : err.message;
      if (errors.includes(message)) break;
      errors.push(message);
      if (!key) break;
      const placeholder = PLACEHOLDERS[key];
      if (placeholder !== undefined ? work[key] === placeholder : work[key] === undefined) break;
      work[key] = placeholder;
    }
  }
  return { errors };
}

/**
 * The configuration in effect, in the file's own form (so it can be saved as a config file): each
 * setting as given, else its default, else the value resolved for this machine; secrets redacted.
 */
export function effectiveYaml(options: OptionTable, raw: Record<string, unknown>, cfg: Record<string, unknown>, sources: string): string {
  const out: Record<string, unknown> = {};
  // Defaults valid on their own: one of a setting that needs another (--dedupe, --listen-webhook) would not read back.
  const defaults = Object.fromEntries(SETTINGS.filter((s) => s.default !== undefined && !s.requires).map((s) => [camel(s.flag), s.default])) as Record<string, unknown>;
  for (const flag of fileFlags(options)) {
    const key = camel(flag);
    const resolved = cfg[key] ?? cfg[key === 'file' ? 'files' : key];
    let value = raw[key] ?? defaults[key] ?? (isPlain(resolved) ? resolved : undefined);
    if (value === undefined) continue;
    // One drain reads as it is usually written; a pool as its list.
    if (flag === 'to' && Array.isArray(value) && value.length === 1) value = value[0];
    // A numeric default of a string flag prints as the file would give it back, so the output reads back the same.
    const typed = typeof value === 'number' && !options.number.includes(flag) ? String(value) : value;
    out[fileKey(flag)] = redact(flag, typed);
  }
  return `# auditfwd: effective configuration (${sources}); secrets redacted\n` + yaml().stringify(out, { lineWidth: 0 });
}

function isPlain(v: unknown): boolean {
  if (Array.isArray(v)) return v.every((x) => ['string', 'number', 'boolean'].includes(typeof x));
  return ['string', 'number', 'boolean'].includes(typeof v);
}
