import { helpLine } from './describe.js';
import { camel, GROUPS, SETTINGS, type Setting } from './options.js';

/**
 * The command line, read against the settings table. Not yargs: loading it cost every run 8-10 MB
 * of peak RSS (node alone 40.1 MB, node with yargs required 48.5; bench/README.md, RSS), a seventh
 * of the 64 MB a master VM's forwarder is given, for what this file does in a page.
 *
 * `--flag value`, `--flag=value`, `-f value` (aliases). A value may be `-` (stdin, stdout) or start
 * with `-` and a digit (`-1s`: the validator says why it is wrong); any other word starting with `-`
 * is a flag, so a flag missing its value is an error here, not an empty value later. Booleans:
 * `--once`, `--once=false`, `--no-once`, `--once false`. Repeatable flags (lists) are repeated, or
 * take the words after them (`--file /var/log/*.log`, as the shell expands it). A flag given twice
 * that is not a list: the last one counts, as with the config file under flags.
 */

export class UsageError extends Error {}

export type Argv = Record<string, unknown> & { help?: boolean; version?: boolean; config?: unknown; checkConfig?: unknown };

const BY_NAME = new Map<string, Setting>();
for (const s of SETTINGS) {
  BY_NAME.set(`--${s.flag}`, s);
  if (s.alias) BY_NAME.set(`-${s.alias}`, s);
}

/** A word that is a value even though it starts with '-': stdin/stdout, a negative number or duration. */
const dashValue = (word: string) => word === '-' || /^-\d/.test(word);
const isFlag = (word: string | undefined) => word !== undefined && word.startsWith('-') && !dashValue(word);

/** Flags by camelCase name, as the config file's keys are merged with them (cli.ts); lists as arrays. */
export function parseArgv(argv: readonly string[]): Argv {
  const out: Argv = {};
  for (let i = 0; i < argv.length; i++) {
    const word = argv[i];
    if (word === '--help' || word === '--version') {
      out[word.slice(2)] = true;
      continue;
    }
    if (!isFlag(word)) throw new UsageError(`unexpected argument "${word}": values follow their flag (--file ${word}?)`);
    const eq = word.indexOf('=');
    const name = eq === -1 ? word : word.slice(0, eq);
    let inline = eq === -1 ? undefined : word.slice(eq + 1);
    let s = BY_NAME.get(name);
    if (!s && name.startsWith('--no-') && inline === undefined) {
      const negated = BY_NAME.get(`--${name.slice(5)}`);
      if (negated?.kind === 'boolean') {
        s = negated;
        inline = 'false';
      }
    }
    if (!s) throw new UsageError(`unknown flag ${name}`);
    const key = camel(s.flag);
    if (s.kind === 'boolean') {
      let value = inline;
      if (value === undefined && (argv[i + 1] === 'true' || argv[i + 1] === 'false')) value = argv[++i];
      if (value !== undefined && value !== 'true' && value !== 'false') throw new UsageError(`--${s.flag}: "${value}" is not true or false`);
      out[key] = value !== 'false';
      continue;
    }
    let value = inline;
    if (value === undefined) {
      if (i + 1 >= argv.length || isFlag(argv[i + 1])) throw new UsageError(`--${s.flag} needs a value`);
      value = argv[++i];
    }
    if (s.kind !== 'list') {
      out[key] = value;
      continue;
    }
    const list = (out[key] as string[] | undefined) ?? [];
    list.push(value);
    while (i + 1 < argv.length && !argv[i + 1].startsWith('-')) list.push(argv[++i]);
    out[key] = list;
  }
  return out;
}

const USAGE = ['auditfwd --file PATH --to HOST:PORT [options]', 'cat audit.log | auditfwd --to HOST:PORT'];

/** --help: usage, then the flags by group, each with its description and default, wrapped to `width`. */
export function helpText(width: number): string {
  const rows = (s: Setting) => [`${s.alias ? `-${s.alias}, ` : '    '}--${s.flag}`, helpLine(s)] as const;
  const groups: Array<[string, Array<readonly [string, string]>]> = GROUPS.map((g) => [g, SETTINGS.filter((s) => s.group === g).map(rows)]);
  groups.push(['Options', [['    --help', 'Show help'], ['    --version', 'Show version number']]]);
  const left = Math.max(...groups.flatMap(([, r]) => r.map(([flag]) => flag.length))) + 4;
  const out = [...USAGE, ''];
  for (const [group, list] of groups) {
    out.push(`${group}:`);
    for (const [flag, text] of list) {
      const lines = wrap(text, Math.max(30, width - left));
      out.push(`  ${flag.padEnd(left - 2)}${lines[0]}`);
      for (const more of lines.slice(1)) out.push(' '.repeat(left) + more);
    }
    out.push('');
  }
  return out.join('\n');
}

function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  // A word longer than a line (a selector example, a list of choices) is cut where the line ends.
  const words = text.split(' ').flatMap((w) => w.match(new RegExp(`.{1,${width}}`, 'g')) ?? ['']);
  for (const word of words) {
    if (line && line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines;
}
