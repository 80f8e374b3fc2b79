import t from 'tap';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { BIN, cleanEnv } from '../helpers/proc.js';
import { parseRfc5424, splitOctetCounted } from '../helpers/rfc5424.js';

// `npm start` on a terminal: one message per line, said once on stderr; piped, the octet-counted
// stream a drain expects. util-linux's script(1) gives bin/auditfwd a real terminal as stdout.
const SAMPLE = fileURLToPath(new URL('../../examples/kube-apiserver/audit.log', import.meta.url));
const lines = readFileSync(SAMPLE, 'utf8').split('\n').filter((l) => l.trim() !== '');
const noScript = spawnSync('script', ['--version']).error ? 'script(1) (util-linux/bsdutils) is not installed' : false;
if (noScript) console.error(`# SKIP terminal tests: ${noScript}`);

/** The MSG of every octet-counted frame; nothing may be left over. */
function messages(t: Tap.Test, stream: string): string[] {
  const { frames, rest } = splitOctetCounted(Buffer.from(stream));
  t.equal(rest.length, 0, 'no partial frame');
  return frames.map((f) => parseRfc5424(f).msg.toString('utf8'));
}

const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs bin/auditfwd with `extra` flags on the sample, stdout on a terminal (or a pipe); stderr goes to a file. */
async function run(t: Tap.Test, extra: string[], terminal: boolean): Promise<{ out: string; err: string; code: number | null }> {
  const dir = t.testdir({});
  const errFile = join(dir, 'stderr');
  const cmd = `${['env', '-u', 'NODE_OPTIONS', BIN, '--log-level', 'warn', '--to', '-', ...extra].map(quote).join(' ')} < ${quote(SAMPLE)} 2> ${quote(errFile)}`;
  const child = terminal ? spawn('script', ['-qec', cmd, '/dev/null'], { env: cleanEnv() }) : spawn('sh', ['-c', cmd], { env: cleanEnv() });
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  const out: Buffer[] = [];
  child.stdout!.on('data', (d: Buffer) => out.push(d));
  child.stdin!.end();
  const [code] = await once(child, 'close');
  // A terminal turns LF into CR LF on output.
  return { out: Buffer.concat(out).toString('utf8').replace(/\r\n/g, '\n'), err: readFileSync(errFile, 'utf8'), code };
}

t.test('stdout on a terminal: one message per line, said once on stderr', { skip: noScript }, async (t) => {
  const r = await run(t, [], true);
  t.equal(r.code, 0, `exit code (stderr: ${r.err})`);
  const shown = r.out.split('\n').filter((l) => l !== '');
  t.equal(shown.length, lines.length, 'one line per message');
  shown.forEach((l, i) => {
    if (!l.startsWith('<14>1 ') || !l.endsWith(lines[i]!)) t.fail(`line ${i + 1} is not the message of input line ${i + 1}: ${l.slice(0, 80)}`);
  });
  t.equal(r.err.match(/stdout is a terminal: one message per line/g)?.length, 1, 'said once on stderr');
});

t.test('on a terminal, --framing given keeps octet counting, and nothing is said', { skip: noScript }, async (t) => {
  const r = await run(t, ['--framing', 'octet-counting'], true);
  t.equal(r.code, 0, `exit code (stderr: ${r.err})`);
  t.same(messages(t, r.out), lines, 'octet-counted frames of every line');
  t.notMatch(r.err, /terminal/);
});

t.test('piped: the octet-counted stream a drain expects, and nothing is said', async (t) => {
  const r = await run(t, [], false);
  t.equal(r.code, 0, `exit code (stderr: ${r.err})`);
  t.same(messages(t, r.out), lines, 'octet-counted frames of every line');
  t.notMatch(r.err, /terminal/);
});
