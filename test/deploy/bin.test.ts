import t from 'tap';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { runAuditfwd } from '../helpers/proc.js';

// NODE_EXTRA_CA_CERTS makes node parse that bundle at start, for its default trust store, before
// any code runs: about 2 MB of RSS on a host that sets it for every process (the bench's does).
// auditfwd never uses that store (its TLS trusts --ca or the system bundle, read by itself), so
// bin/auditfwd's #! line takes the variable out. A missing file makes node warn at start.
const WARNING = /Ignoring extra certs/;

t.test('bin/auditfwd starts node without NODE_EXTRA_CA_CERTS', async (t) => {
  const missing = join(t.testdir({}), 'no-such-bundle.pem');
  // The control: node given the variable reads it (and warns, the file being absent).
  const plain = spawnSync(process.execPath, ['-e', '0'], { env: { PATH: process.env.PATH, NODE_EXTRA_CA_CERTS: missing }, encoding: 'utf8' });
  t.match(plain.stderr, WARNING, 'node alone reads the variable');
  const run = runAuditfwd(t, ['--version'], { env: { NODE_EXTRA_CA_CERTS: missing } });
  t.equal(await run.exited, 0, run.stderr());
  t.match(run.stdout().toString(), /^\d+\.\d+\.\d+/, 'it ran');
  t.notMatch(run.stderr(), WARNING, 'bin/auditfwd did not pass it on');
});
