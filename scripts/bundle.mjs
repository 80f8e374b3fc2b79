// Bundles dist/ (tsc's output) and the runtime dependencies into dist/auditfwd.js, the file
// bin/auditfwd runs; what is loaded only for some settings (NATS, the ops server, the webhook) goes
// into chunks loaded when asked for. Node's module loader cost each run ~70 ms of start-up and
// 5.4 MB of peak RSS for the ~140 files one at a time (docs/design.md).
import { build } from 'esbuild';
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
rmSync(`${root}dist/chunks`, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: { auditfwd: 'dist/cli.js' },
  outdir: 'dist',
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  // yaml stays a file of its own, loaded only with a config file (createRequire in config/file.ts).
  external: ['yaml'],
  // CommonJS dependencies call require(): ESM has none of its own.
  banner: { js: "import { createRequire as __auditfwdRequire } from 'node:module'; const require = __auditfwdRequire(import.meta.url);" },
  // Chained to tsc's maps: stack traces and the tests' coverage point at src/.
  sourcemap: 'linked',
  logLevel: 'warning',
});

// esbuild escapes non-ASCII in strings, templates and regular expressions, not in the comments it
// keeps (on class members). One such character makes V8 hold a file's whole source as a two-byte
// string: twice its size in the heap for the process's life (1 MB for auditfwd.js and its chunk of
// the k8s-audit transforms, for a "→" and a "…"). Escaped here; one outside a comment stops the build.
for (const file of ['dist/auditfwd.js', ...readdirSync(`${root}dist/chunks`).filter((n) => n.endsWith('.js')).map((n) => `dist/chunks/${n}`)]) {
  const text = readFileSync(`${root}${file}`, 'utf8');
  if (!/[^\x00-\x7f]/.test(text)) continue;
  const lines = text.split('\n');
  lines.forEach((line, i) => {
    if (!/[^\x00-\x7f]/.test(line)) return;
    if (!/^\s*(\/\/|\/\*|\*)/.test(line)) throw new Error(`${file}:${i + 1}: a non-ASCII character outside a comment: ${line.trim().slice(0, 120)}`);
    lines[i] = line.replace(/[^\x00-\x7f]/gu, (c) => `\\u{${c.codePointAt(0).toString(16)}}`);
  });
  writeFileSync(`${root}${file}`, lines.join('\n'));
}
