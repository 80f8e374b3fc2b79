import { GROUPS, SETTINGS, type Setting } from './options.js';

/** How the settings table reads to a person: --help's lines and docs/flags.md. */

const BINARY = [
  ['GiB', 1024 ** 3],
  ['MiB', 1024 ** 2],
  ['KiB', 1024],
] as const;
const TIMES = [
  ['h', 3_600_000],
  ['m', 60_000],
  ['s', 1000],
] as const;

function withUnit(n: number, units: ReadonlyArray<readonly [string, number]>, base: string): string {
  for (const [unit, factor] of units) if (n >= factor && n % factor === 0) return `${n / factor}${unit}`;
  return `${n}${base}`;
}

function show(s: Setting, n: number): string {
  if (s.kind === 'duration') return withUnit(n, TIMES, 'ms');
  if (s.kind !== 'size') return String(n);
  return withUnit(n, BINARY, ' bytes') + (s.flag.endsWith('-rate') ? '/s' : '');
}

export function defaultText(s: Setting): string | undefined {
  return s.defaultText ?? (s.default === undefined ? undefined : String(s.default));
}

/** The accepted values: choices, bounds, or the text the table gives when a bound is another setting. */
export function rangeText(s: Setting): string | undefined {
  if (s.rangeText) return s.rangeText;
  if (s.choices) return s.choices.join(' | ');
  if (s.kind === 'boolean') return 'true | false';
  if (s.min === undefined && s.max === undefined) return s.word;
  const range = s.max === undefined ? (s.min ? `at least ${show(s, s.min)}` : 'any') : `${show(s, s.min ?? 0)} to ${show(s, s.max)}`;
  return s.word ? `${range}, or ${s.word}` : range;
}

/** One --help line: the description, the choices unless it names them, and the default. */
export function helpLine(s: Setting): string {
  const choices = s.choices && !s.choices.every((c) => s.description.includes(c)) ? `: ${s.choices.join('|')}` : '';
  const d = s.defaultText ? ` (default: ${s.defaultText})` : s.default !== undefined ? ` (default ${s.default})` : '';
  return `${s.description}${choices}${d}`;
}

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** docs/flags.md: the whole reference, by help group. */
export function flagsMarkdown(): string {
  const out = [
    '# Flags and config-file keys',
    '',
    '<!-- Generated from src/config/options.ts by `npm run docs`; do not edit by hand. -->',
    '',
    'Every flag is also a config-file key (`--config FILE`, YAML or JSON); flags override the file.',
    'Sizes take units (`65536`, `64KiB`, `16MiB`, `1GiB`), durations too (`250ms`, `5s`, `1m`, `1h`).',
    '"SIGHUP" says how a changed value is applied on reload: at once, by reconnecting to the drain',
    '(sink), or from the next batch read (encoders); "restart" means only after a restart.',
    '',
  ];
  for (const group of GROUPS) {
    out.push(`## ${group}`, '', '| Flag | Config key | Default | Values | SIGHUP | Description |', '| --- | --- | --- | --- | --- | --- |');
    for (const s of SETTINGS.filter((x) => x.group === group)) {
      const flag = `\`--${s.flag}\`${s.alias ? ` (\`-${s.alias}\`)` : ''}`;
      const key = s.fileKey === null ? '—' : `\`${s.fileKey ?? s.flag.replace(/-/g, '_')}\``;
      const notes = [
        s.kind === 'list' && !/repeatable/i.test(s.description) ? 'Repeatable.' : '',
        s.fromMapping ? 'In a file, also a mapping (`{SD-ID: {name: value}}`).' : '', s.requires ? `Needs \`--${s.requires}\`.` : '', s.secret ? 'Names a secret file: not shown unless it looks like a path.' : '']
        .filter(Boolean)
        .join(' ');
      const row = [flag, key, cell(defaultText(s) ?? '—'), cell(rangeText(s) ?? (s.kind === 'list' ? 'list of text' : 'text')), s.fileKey === null ? '—' : (s.reload ?? 'restart'), cell(notes ? `${s.description.replace(/\.?$/, '.')} ${notes}` : s.description)];
      out.push(`| ${row.join(' | ')} |`);
    }
    out.push('');
  }
  return out.join('\n');
}
