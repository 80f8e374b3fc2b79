import t from 'tap';
import { spawnSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BIN } from '../helpers/proc.js';

// NODE_EXTRA_CA_CERTS makes node parse that bundle for its default trust store: Node 20 at start,
// before any code runs, about 2 MB of RSS on a host that sets it for every process (the bench's
// does); later lines when a TLS context first needs that store. auditfwd never trusts that store
// (every drain trusts --ca or the system bundle, read by auditfwd: src/sinks/system-trust.ts), so
// the #! line takes the variable out.

t.test('bin/auditfwd starts node without NODE_EXTRA_CA_CERTS', async (t) => {
  const dir = t.testdir({});
  // Loaded into node before the program: says whether the variable reached the process.
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, "process.stderr.write(`extra CA variable: ${'NODE_EXTRA_CA_CERTS' in process.env}\\n`);\n");
  // The test runner puts its loaders into every child's NODE_OPTIONS; `env` replaces them with the probe.
  const withProbe = (cmd: string, args: string[]) =>
    spawnSync('env', ['-u', 'NODE_OPTIONS', `NODE_OPTIONS=--require ${probe}`, cmd, ...args], {
      env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: join(dir, 'bundle.pem') },
      encoding: 'utf8',
    });
  const plain = withProbe(process.execPath, ['-e', '0']);
  t.match(plain.stderr, /extra CA variable: true/, 'node started plainly gets the variable');
  const bin = withProbe(BIN, ['--version']);
  t.equal(bin.status, 0, bin.stderr);
  t.match(bin.stdout, /^\d+\.\d+\.\d+/, 'auditfwd ran');
  t.match(bin.stderr, /extra CA variable: false/, 'bin/auditfwd did not pass it on');
});
