import t from 'tap';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { cleanEnv } from '../helpers/proc.js';

// The bundle bin/auditfwd runs (scripts/bundle.mjs).
const CLI = fileURLToPath(new URL('../../dist/auditfwd.js', import.meta.url));

/** The real main(), with a fault injected into its process once it runs: what nothing handles. */
async function withFault(t: Tap.Test, fault: string): Promise<{ code: number | null; stderr: string }> {
  const script = `import(${JSON.stringify(CLI)}).then((cli) => { cli.main(['--to', '-', '--log-level', 'info']); setTimeout(() => { ${fault} }, 300); });`;
  const child = spawn(process.execPath, ['--input-type=module', '-e', script], { stdio: ['pipe', 'ignore', 'pipe'], env: cleanEnv() });
  t.teardown(() => child.kill('SIGKILL'));
  let stderr = '';
  child.stderr!.on('data', (d: Buffer) => (stderr += d));
  const [code] = (await once(child, 'exit')) as [number | null];
  return { code, stderr };
}

for (const [name, fault] of [
  ['an unhandled rejection', "Promise.reject(Object.assign(new Error('EISDIR: illegal operation on a directory, read'), { code: 'EISDIR' }));"],
  ['an uncaught exception', "throw new RangeError('offset out of range');"],
]) {
  t.test(`${name}: one log line, exit 70, no stack trace`, async (t) => {
    const { code, stderr } = await withFault(t, fault);
    t.equal(code, 70);
    const fatal = stderr.split('\n').filter((l) => l.includes('"level":60'));
    t.equal(fatal.length, 1, 'one fatal line');
    t.match(fatal[0], /"msg":"internal error; exiting"/);
    t.match(fatal[0], /"at":"/, 'where it happened');
    t.notMatch(stderr, /\n\s+at /, 'no stack trace');
  });
}
