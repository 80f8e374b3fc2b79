import t from 'tap';
import { once } from 'node:events';
import { existsSync, statSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type Socket } from 'node:net';
import { join } from 'node:path';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { freePort } from '../helpers/net.js';
import { runAuditfwd } from '../helpers/proc.js';
import { FlakyDrain, range } from '../helpers/spill.js';

// Found by the soak (seed 49120): a drain went away with messages unread in its buffers, auditfwd
// was killed with -9 before it could connect again, and those messages were lost. Their positions
// were committed when the socket took them; what the lost connection owed was only in the
// process's resend window.

const metric = (port: number, name: string) =>
  new Promise<number>((resolve, reject) => {
    get(`http://127.0.0.1:${port}/metrics`, { agent: false }, (res) => {
      let body = '';
      res.on('data', (d) => (body += d));
      res.on('end', () => resolve(Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(body)?.[1])));
    }).on('error', reject);
  });

async function until(t: Tap.Test, what: string, cond: () => Promise<boolean>, withinMs = 20_000): Promise<void> {
  const deadline = Date.now() + withinMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`not within ${withinMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20)); // polling a counter: there is no event to await
  }
  t.pass(what);
}

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
  await until(t, `all ${N} lines handed to the socket`, async () => (await metric(metrics, 'auditfwd_messages_sent_total').catch(() => 0)) >= N);

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
  await until(t, 'once sent again, nothing is owed any more', async () => !existsSync(owed));
  second.child.kill('SIGTERM');
  t.equal(await second.exited, 0);
});
