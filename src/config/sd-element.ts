import { ConfigError } from './errors.js';
import { sdElement } from '../framing/rfc5424.js';

/** SD-NAME (RFC 5424 section 6.3.2): 1-32 PRINTUSASCII except '=', SP, ']' and '"'. */
const SD_NAME = /^[!#-<>-\\^-~]{1,32}$/;
/** SD-IDs without an "@": only the IANA-registered ones may be used. */
const IANA_IDS = new Set(['timeQuality', 'origin', 'meta']);

/**
 * Parses `ID name=value name="value with spaces"` (a backslash escapes the next character inside
 * quotes): the form `--sd-element` and the config file's list form take.
 */
export function parseSdSpec(text: string): { id: string; params: Array<[string, string]> } {
  const re = /\s*([^\s=]+)(?:=(?:"((?:[^"\\]|\\.)*)"|(\S*)))?/gy;
  let m: RegExpExecArray | null;
  const params: Array<[string, string]> = [];
  let id = '';
  while (re.lastIndex < text.length && (m = re.exec(text))) {
    if (!m[0].trim()) break;
    if (!id) {
      if (m[2] !== undefined || m[3] !== undefined) throw new Error(`"${m[0].trim()}" is a parameter; the element's SD-ID comes first`);
      id = m[1];
      continue;
    }
    if (m[2] === undefined && m[3] === undefined) throw new Error(`parameter "${m[1]}" has no "=value"`);
    if (m[3]?.startsWith('"')) throw new Error(`parameter "${m[1]}": unterminated quote`);
    params.push([m[1], m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : m[3]]);
  }
  if (re.lastIndex < text.length && text.slice(re.lastIndex).trim()) throw new Error(`cannot parse "${text.slice(re.lastIndex).trim()}"`);
  if (!id) throw new Error('empty element (expected e.g. instance@47450 az=z1 id=uuid)');
  return { id, params };
}

function checkName(what: string, name: string): void {
  if (!SD_NAME.test(name)) throw new Error(`${what} "${name}" is not a valid SD-NAME (1-32 printable ASCII characters, none of = ] " or space)`);
}

/** Throws unless `id` is a valid SD-ID: name@<enterprise number>, or one registered with IANA. */
export function checkSdId(id: string): void {
  const [name, pen, extra] = id.split('@');
  checkName('SD-ID', id);
  if (extra !== undefined || (pen !== undefined && !/^\d+(\.\d+)*$/.test(pen)) || name === '') throw new Error(`SD-ID "${id}" must be name@<enterprise number>`);
  if (pen === undefined && !IANA_IDS.has(id)) throw new Error(`SD-ID "${id}" has no "@<enterprise number>" and is not registered with IANA`);
}

/** The elements, validated and encoded once, ready to go into every header ('' for none). */
export function parseSdElements(flag: string, specs: string[]): string {
  const seen = new Set<string>();
  let out = '';
  for (const spec of specs) {
    try {
      const { id, params } = parseSdSpec(spec);
      checkSdId(id);
      if (seen.has(id)) throw new Error(`SD-ID "${id}" is given twice (RFC 5424 allows it once per message)`);
      seen.add(id);
      for (const [p] of params) checkName('parameter name', p);
      out += sdElement(id, params);
    } catch (err) {
      throw new ConfigError(`--${flag}: ${(err as Error).message}`);
    }
  }
  return out;
}

/** The config file's mapping form `{ "instance@47450": { az: z1 } }` as `--sd-element` values. */
export function sdSpecsFromObject(value: Record<string, unknown>): string[] {
  return Object.entries(value).map(([id, params]) => {
    if (params !== null && params !== undefined && (typeof params !== 'object' || Array.isArray(params))) throw new Error(`${id}: must be a mapping of parameter names to values`);
    const pairs = params ? Object.entries(params as Record<string, unknown>) : [];
    for (const [k, v] of pairs) {
      if (v !== null && typeof v === 'object') throw new Error(`${id}: parameter ${k} must be a string or a number, not ${Array.isArray(v) ? 'a list' : 'a mapping'}`);
    }
    return [id, ...pairs.map(([k, v]) => `${k}="${String(v ?? '').replace(/["\\]/g, '\\$&')}"`)].join(' ');
  });
}
