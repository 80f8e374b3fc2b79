/**
 * Event selectors in the syntax of `kubectl -l` (k8s.io/apimachinery/pkg/labels), applied to audit
 * events: `verb in (create,update),objectRef.resource=secrets,!impersonatedUser`. Keys are dotted
 * paths into the event; requirements separated by commas must all hold.
 */

export type Op = '=' | '!=' | 'in' | 'notin' | 'exists' | '!exists' | '>' | '<';

export interface Requirement {
  path: string[];
  op: Op;
  values: string[];
}

export class SelectorError extends Error {}

/** One `--select`/`--exclude` value: requirements that must all hold. */
export class Selector {
  constructor(
    readonly text: string,
    readonly requirements: Requirement[],
  ) {}

  matches(event: unknown): boolean {
    for (const r of this.requirements) if (!holds(r, event)) return false;
    return true;
  }
}

// Characters that end a key or a value. Values are wider than Kubernetes label values on purpose:
// audit fields hold usernames (`system:serviceaccount:ns:sa`, e-mail addresses), IPs and paths.
const isWordChar = (c: string) => !/[\s,()=!<>]/.test(c);

interface Token {
  kind: 'word' | '!' | '!=' | '=' | '==' | '(' | ')' | ',' | '>' | '<' | 'end';
  text: string;
  /** 0-based offset into the selector text. */
  at: number;
}

function tokenize(text: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i];
    if (/\s/.test(c)) {
      i++;
      continue;
    }
    const two = text.slice(i, i + 2);
    if (two === '!=' || two === '==') {
      tokens.push({ kind: two, text: two, at: i });
      i += 2;
    } else if ('!=(),<>'.includes(c)) {
      tokens.push({ kind: c as Token['kind'], text: c, at: i });
      i++;
    } else {
      const start = i;
      while (i < text.length && isWordChar(text[i])) i++;
      tokens.push({ kind: 'word', text: text.slice(start, i), at: start });
    }
  }
  tokens.push({ kind: 'end', text: '', at: text.length });
  return tokens;
}

const describe = (t: Token) => (t.kind === 'end' ? 'end of selector' : `'${t.text}'`);

/** Parses one selector; a SelectorError names the offending token and its 1-based column. */
export function parseSelector(text: string): Selector {
  const tokens = tokenize(text);
  let p = 0;
  const fail = (t: Token, expected?: string): never => {
    throw new SelectorError(`unexpected ${describe(t)} at column ${t.at + 1}${expected ? ` (expected ${expected})` : ''}: ${text}`);
  };
  const key = (): string[] => {
    const t = tokens[p];
    if (t.kind !== 'word') fail(t, 'a key');
    p++;
    const path = t.text.split('.');
    if (path.some((s) => s === '')) {
      throw new SelectorError(`empty path segment in key '${t.text}' at column ${t.at + 1}: ${text}`);
    }
    return path;
  };
  const requirements: Requirement[] = [];
  if (tokens[0].kind === 'end') throw new SelectorError(`empty selector`);
  for (;;) {
    if (tokens[p].kind === '!') {
      p++;
      requirements.push({ path: key(), op: '!exists', values: [] });
    } else {
      const path = key();
      const t = tokens[p];
      if (t.kind === ',' || t.kind === 'end') {
        requirements.push({ path, op: 'exists', values: [] });
      } else if (t.kind === '=' || t.kind === '==' || t.kind === '!=') {
        p++;
        // `key=` compares with the empty string, as in Kubernetes.
        const v = tokens[p].kind === 'word' ? tokens[p++].text : '';
        requirements.push({ path, op: t.kind === '!=' ? '!=' : '=', values: [v] });
      } else if (t.kind === '>' || t.kind === '<') {
        p++;
        const v = tokens[p];
        if (v.kind !== 'word' || !/^-?\d+$/.test(v.text)) fail(v, 'an integer');
        p++;
        requirements.push({ path, op: t.kind, values: [v.text] });
      } else if (t.kind === 'word' && (t.text === 'in' || t.text === 'notin')) {
        p++;
        if (tokens[p].kind !== '(') fail(tokens[p], "'('");
        p++;
        const values: string[] = [];
        for (;;) {
          const v = tokens[p];
          if (v.kind !== 'word') fail(v, 'a value');
          values.push(v.text);
          p++;
          if (tokens[p].kind === ',') {
            p++;
            continue;
          }
          if (tokens[p].kind === ')') {
            p++;
            break;
          }
          fail(tokens[p], "',' or ')'");
        }
        requirements.push({ path, op: t.text as 'in' | 'notin', values });
      } else {
        fail(t, "an operator (=, ==, !=, in, notin, >, <) or ','");
      }
    }
    const sep = tokens[p];
    if (sep.kind === 'end') break;
    if (sep.kind !== ',') fail(sep, "','");
    p++;
  }
  return new Selector(text, requirements);
}

/**
 * The value at a dotted path. Keys that contain dots themselves (annotations such as
 * `authorization.k8s.io/decision`) are found by trying the longest joined key first.
 */
export function lookup(obj: unknown, path: string[], from = 0): unknown {
  if (from === path.length) return obj;
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return undefined;
  const rec = obj as Record<string, unknown>;
  for (let end = path.length; end > from; end--) {
    const k = end === from + 1 ? path[from] : path.slice(from, end).join('.');
    if (Object.hasOwn(rec, k)) {
      const found = lookup(rec[k], path, end);
      if (found !== undefined) return found;
    }
  }
  return undefined;
}

/** Scalars compare as text; an array (e.g. `user.groups`) compares element by element. */
function scalars(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (typeof v === 'number' || typeof v === 'boolean') return [String(v)];
  if (Array.isArray(v)) return v.filter((e) => typeof e !== 'object' || e === null).map(String);
  return undefined;
}

function holds(r: Requirement, event: unknown): boolean {
  const v = lookup(event, r.path);
  const present = v !== undefined && v !== null;
  switch (r.op) {
    case 'exists':
      return present;
    case '!exists':
      return !present;
    case '=':
    case 'in': {
      const s = present ? scalars(v) : undefined;
      return s !== undefined && s.some((x) => r.values.includes(x));
    }
    case '!=':
    case 'notin': {
      // As in Kubernetes, an absent key satisfies != and notin.
      const s = present ? scalars(v) : undefined;
      return s === undefined || !s.some((x) => r.values.includes(x));
    }
    case '>':
    case '<': {
      const n = typeof v === 'number' ? v : typeof v === 'string' && /^-?\d+$/.test(v) ? Number(v) : NaN;
      if (Number.isNaN(n)) return false;
      return r.op === '>' ? n > Number(r.values[0]) : n < Number(r.values[0]);
    }
  }
}

/** Several `--select` are ORed; any matching `--exclude` drops the event. */
export class EventFilter {
  constructor(
    private readonly select: Selector[],
    private readonly exclude: Selector[],
  ) {}

  get active(): boolean {
    return this.select.length > 0 || this.exclude.length > 0;
  }

  /** Every top-level key a requirement can read (see lookup): the rest of an event need not be parsed. */
  topLevelKeys(): Set<string> {
    const keys = new Set<string>();
    for (const s of [...this.select, ...this.exclude]) {
      for (const r of s.requirements) for (let end = 1; end <= r.path.length; end++) keys.add(r.path.slice(0, end).join('.'));
    }
    return keys;
  }

  accepts(event: unknown): boolean {
    if (this.select.length > 0 && !this.select.some((s) => s.matches(event))) return false;
    return !this.exclude.some((s) => s.matches(event));
  }
}
