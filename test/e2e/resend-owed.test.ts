import t from 'tap';
import { once } from 'node:events';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { freePort, get, parseMetrics, until } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { FlakyDrain, range } from '../helpers/spill.js';

// Found by the soak (seed 49120): a drain went away with messages unread in its buffers, auditfwd
// was killed with -9 before it could connect again, and those messages were lost. Their positions
// were committed when the socket took them; what the lost connection owed was only in the
// process's resend window.

/** A counter from auditfwd's /metrics. */
const metric = async (port: number, name: string) => parseMetrics((await get(`http://127.0.0.1:${port}/metrics`)).text).get(name);

t.test('a drain dies with messages unread, auditfwd is killed before it reconnects: the next run sends them first', async (t) => {
  const dir = t.testdir();
  const N = 300;
  const file = join(dir, 'audit.log');
  writeFileSync(file, numberedAuditLines(N).join('\n') + '\n');
  const drain = await FlakyDrain.reserve(t);
  // First the drain takes the connection and never reads: what auditfwd sends stays in its buffers.
  const deafSockets = new Set<Socket>();
  const deaf = createServer((s) => {
    s.pause();
    deafSockets.add(s);
  });
  deaf.listen(drain.port, '127.0.0.1');
  await once(deaf, 'listening');
  const metrics = await freePort();
  const args = ['--file', file, '--to', drain.address, '--state-dir', join(dir, 'state'), '--metrics-listen', `127.0.0.1:${metrics}`];
  const first = runAuditfwd(t, args);
  await until(`all ${N} lines handed to the socket`, async () => ((await metric(metrics, 'auditfwd_messages_sent_total')) ?? 0) >= N || undefined, 20_000);

  // The drain dies: its unread buffers go with it (closing a socket with unread data resets it).
  deaf.close();
  for (const s of deafSockets) s.destroy();
  await first.waitForLog(/connection to drain lost/);
  const owed = join(dir, 'state', 'spill', 'resend-owed');
  t.equal(existsSync(owed) && statSync(owed).mode & 0o777, 0o600, 'what the lost connection owes is in the buffer folder, readable by auditfwd alone');
  first.child.kill('SIGKILL');
  await first.exited;

  await drain.up();
  const second = runAuditfwd(t, args);
  await second.waitForLog(/sending again what the lost connection may not have delivered/, 20_000);
  await drain.waitForSeqs(N);
  t.same([...drain.seqs].sort((a, b) => a - b), range(0, N), 'every line arrives');
  await until('nothing owed once sent again', async () => !existsSync(owed) || undefined, 20_000);
  t.notOk(existsSync(owed), 'once sent again, nothing is owed any more');
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});
