import t from 'tap';
import { helpText, parseArgv, UsageError } from '../../src/config/argv.js';
import { GROUPS, SETTINGS } from '../../src/config/options.js';

function fails(t: Tap.Test, argv: string[], message: RegExp): void {
  try {
    parseArgv(argv);
    t.fail(`${argv.join(' ')}: no error`);
  } catch (err) {
    t.ok(err instanceof UsageError, 'a usage error');
    t.match((err as Error).message, message, argv.join(' '));
  }
}

t.test('values: after the flag, after =, by alias; a dash and a dash-digit are values', async (t) => {
  t.strictSame(parseArgv(['--to', 'd:1', '--state-dir=/s', '-f', 'a.log', '--exit-timeout', '-1s', '--file', '-']), {
    to: ['d:1'],
    stateDir: '/s',
    file: ['a.log', '-'],
    exitTimeout: '-1s',
  });
  t.strictSame(parseArgv(['--select', 'verb in (create)', '--listen-webhook', ':0']), { select: ['verb in (create)'], listenWebhook: ':0' });
  t.strictSame(parseArgv(['--sd-element=x@1 a="b=c"']), { sdElement: ['x@1 a="b=c"'] }, 'only the first = splits');
  t.strictSame(parseArgv([]), {});
});

t.test('booleans: alone, =true|false, --no-, or followed by true|false', async (t) => {
  t.strictSame(parseArgv(['--once']), { once: true });
  t.strictSame(parseArgv(['--once=false']), { once: false });
  t.strictSame(parseArgv(['--no-once']), { once: false });
  t.strictSame(parseArgv(['--once', 'false', '--to', 'd:1']), { once: false, to: ['d:1'] });
  t.strictSame(parseArgv(['--once', '--to', 'd:1']), { once: true, to: ['d:1'] });
  fails(t, ['--once=maybe'], /^--once: "maybe" is not true or false$/);
  fails(t, ['--no-to', 'd:1'], /^unknown flag --no-to$/);
});

t.test('lists repeat, or take the words after them; other flags: the last one counts', async (t) => {
  t.strictSame(parseArgv(['--file', 'a', '--file', 'b']), { file: ['a', 'b'] });
  t.strictSame(parseArgv(['--file', 'a', 'b', 'c', '--to', 'd:1']), { file: ['a', 'b', 'c'], to: ['d:1'] }, 'a shell glob expanded');
  t.strictSame(parseArgv(['--format', 'raw', '--format', 'k8s-audit']), { format: 'k8s-audit' });
});

t.test('mistakes name the flag', async (t) => {
  fails(t, ['--frobnicate'], /^unknown flag --frobnicate$/);
  fails(t, ['-x', '1'], /^unknown flag -x$/);
  fails(t, ['--to'], /^--to needs a value$/);
  fails(t, ['--to', '--once'], /^--to needs a value$/);
  fails(t, ['--state-dir', '-f'], /^--state-dir needs a value$/);
  fails(t, ['stray', '--to', 'd:1'], /^unexpected argument "stray"/);
  fails(t, ['--once', 'stray'], /^unexpected argument "stray"/);
});

t.test('--help and --version are seen wherever they are', async (t) => {
  t.strictSame(parseArgv(['--to', 'd:1', '--help']), { to: ['d:1'], help: true });
  t.strictSame(parseArgv(['--version']), { version: true });
});

t.test('--help: every flag under its group, wrapped to the width', async (t) => {
  for (const width of [80, 120]) {
    const text = helpText(width);
    const headings = [...text.matchAll(/^(\S[^\n]*):$/gm)].map((m) => m[1]);
    t.strictSame(headings, [...GROUPS, 'Options']);
    for (const s of SETTINGS) t.match(text, new RegExp(`^  ${s.alias ? `-${s.alias}, ` : '    '}--${s.flag} `, 'm'), `--${s.flag}`);
    const longest = Math.max(...text.split('\n').map((l) => l.length));
    t.ok(longest <= width, `no line past ${width} columns (${longest})`);
  }
});
