import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pino from 'pino';
import { stringify } from 'yaml';
import { loadSettings, resolveSettings } from '../../src/cli.js';
import { CheckpointStore } from '../../src/state/checkpoints.js';
import { runAuditfwd } from '../helpers/proc.js';

const silent = pino({ level: 'silent' });

/** One folder for the in-process runs, rewritten each time: hundreds of t.testdir() would be slow. */
function scratch(t: Tap.Test): string {
  const dir = mkdtempSync(join(tmpdir(), 'auditfwd-hostile-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const anyBytes = fc.uint8Array({ maxLength: 600 }).map((a) => Buffer.from(a));
const anyJson = fc.jsonValue({ maxDepth: 4 }).map((v) => Buffer.from(JSON.stringify(v) ?? 'null'));
/** Checkpoint files of the right shape with wrong values in any field. */
const wild = fc.oneof(fc.integer(), fc.double(), fc.string({ maxLength: 40 }), fc.constant(null), fc.boolean(), fc.constant(-1), fc.constant(2.5), fc.constant(Number.MAX_SAFE_INTEGER + 2));
const entry = fc.record({ path: fc.oneof(fc.constant('/var/log/a.log'), wild), dev: wild, ino: wild, fpLen: wild, fp: fc.oneof(fc.string({ unit: fc.constantFrom(...'0123456789abcdef'), minLength: 32, maxLength: 32 }), wild), offset: wild, updatedAt: wild }, { requiredKeys: [] });
const shaped = fc.record({ version: fc.oneof(fc.constant(1), wild), files: fc.oneof(fc.array(entry, { maxLength: 6 }), wild) }).map((v) => Buffer.from(JSON.stringify(v)));

t.test('checkpoints.json: random bytes, random JSON, wrong values: opens, keeps only valid entries, never throws', async (t) => {
  const dir = scratch(t);
  await fc.assert(
    fc.asyncProperty(fc.oneof(anyBytes, anyJson, shaped), async (bytes) => {
      rmSync(dir, { recursive: true, force: true });
      const state = join(dir, 'state');
      await CheckpointStore.open(state, silent); // makes the folder
      writeFileSync(join(state, 'checkpoints.json'), bytes);
      const store = await CheckpointStore.open(state, silent);
      for (const c of store.all()) {
        for (const k of ['dev', 'ino', 'offset', 'updatedAt', 'fpLen'] as const) if (!Number.isSafeInteger(c[k]) || c[k] < 0) return false;
        if (typeof c.path !== 'string' || c.fpLen > 1024) return false;
      }
      return true;
    }),
    { numRuns: 300 },
  );
});

/** Config keys auditfwd knows, with values of any type: the interesting half of random configs. */
const KEYS = ['to', 'files', 'state_dir', 'once', 'framing', 'facility', 'sd_element', 'max_message_bytes', 'poll_interval', 'listen_webhook', 'webhook_max_depth', 'tls', 'select', 'log_level'];
const knownKeys = fc.dictionary(fc.constantFrom(...KEYS), fc.jsonValue({ maxDepth: 3 }), { maxKeys: 8 }).map((v) => Buffer.from(stringify(v)));

t.test('config file: random bytes, JSON or YAML: a configuration or errors, each one line; never throws', async (t) => {
  const dir = scratch(t);
  const file = join(dir, 'auditfwd.yml');
  fc.assert(
    fc.property(fc.oneof(anyBytes, anyJson, knownKeys), (bytes) => {
      writeFileSync(file, bytes);
      const { cfg, errors } = resolveSettings(loadSettings(['--config', file]));
      if (cfg) return errors.length === 0;
      return errors.length > 0 && errors.length <= 21 && errors.every((e) => e.length > 0 && !e.includes('\n'));
    }),
    { numRuns: 400 },
  );
});

t.test('the binary with random state and config files: starts or exits 2, one line per problem, never a stack trace', async (t) => {
  const dir = t.testdir({ 'audit.log': '{"a":1}\n' });
  const samples = [...fc.sample(fc.oneof(anyBytes, anyJson, shaped), { numRuns: 4, seed: 19 }), Buffer.from('{"version":1,"files":[{"fpLen":-1}]}')];
  for (const [i, bytes] of samples.entries()) {
    const state = join(dir, `state-${i}`);
    const seed = runAuditfwd(t, ['--to', '-', '--file', join(dir, 'audit.log'), '--state-dir', state, '--once']);
    t.equal(await seed.exited, 0, 'first run');
    writeFileSync(join(state, 'checkpoints.json'), bytes);
    const run = runAuditfwd(t, ['--to', '-', '--file', join(dir, 'audit.log'), '--state-dir', state, '--once']);
    t.equal(await run.exited, 0, `checkpoint sample ${i}: starts and finishes`);
    t.notMatch(run.stderr(), /\s+at .*:\d+:\d+|RangeError/, 'no stack trace');
  }
  const configs = fc.sample(fc.oneof(anyBytes, anyJson, knownKeys), { numRuns: 5, seed: 19 });
  for (const [i, bytes] of configs.entries()) {
    const file = join(dir, `config-${i}.yml`);
    writeFileSync(file, bytes);
    const run = runAuditfwd(t, ['--config', file, '--check-config']);
    const code = await run.exited;
    t.ok(code === 0 || code === 2, `config sample ${i}: exit 0 or 2 (${code})`);
    if (code === 2) t.ok(run.stderr().trimEnd().split('\n').every((l) => l.startsWith('auditfwd: ')), 'only "auditfwd: " lines');
    t.notMatch(run.stderr(), /\s+at .*:\d+:\d+/, 'no stack trace');
  }
});
