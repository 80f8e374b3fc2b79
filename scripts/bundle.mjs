// Bundles dist/ (tsc's output) and the runtime dependencies into dist/auditfwd.js, the file
// bin/auditfwd runs; what is loaded only for some settings (NATS, the ops server, the webhook) goes
// into chunks loaded when asked for. Node's module loader cost each run ~70 ms of start-up and
// 5.4 MB of peak RSS for the ~140 files one at a time (docs/design.md).
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
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
