import t from 'tap';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { numberedAuditLines } from '../helpers/fixtures.js';
import { freePort, untilTrue } from '../helpers/ops.js';
import { runAuditfwd } from '../helpers/proc.js';
import { Rsyslog, rsyslogMissing } from '../helpers/rsyslog.js';
import { countDelivered, outputBytes } from '../helpers/rsyslog-count.js';

const missingRelp = rsyslogMissing({ imrelp: 'rsyslog-relp' });
const missingTcp = rsyslogMissing({ imtcp: 'rsyslog' });
if (missingRelp) t.comment(`SKIPPED: a pool of rsyslog RELP relays: ${missingRelp}`);
if (missingTcp) t.comment(`SKIPPED: a pool of rsyslog TCP relays: ${missingTcp}`);

const relpInput = (port: number) => `input(type="imrelp" port="${port}" address="127.0.0.1" ruleset="out" maxDataSize="256k")`;
const tcpInput = (port: number) => `input(type="imtcp" port="${port}" address="127.0.0.1" ruleset="out")`;

/** The relay whose output is growing now (the member in use), once exactly one is. */
async function inUse(relays: Rsyslog[]): Promise<Rsyslog> {
  for (let i = 0; i < 200; i++) {
    const before = relays.map((r) => outputBytes(r.outFile));
    await new Promise((r) => setTimeout(r, 25)); // sampling the output files: they give no event
    const growing = relays.filter((r, k) => r.running && outputBytes(r.outFile) > before[k]);
    if (growing.length === 1) return growing[0];
  }
  throw new Error('no single relay in use');
}

t.test('three rsyslog RELP relays, the one in use killed -9 twice mid-stream: every line in the union, failover within 5 s, few repeats', { skip: missingRelp }, async (t) => {
  const relays = [
    await Rsyslog.start(t, { modules: ['imrelp'], inputs: relpInput }),
    await Rsyslog.start(t, { modules: ['imrelp'], inputs: relpInput }),
    await Rsyslog.start(t, { modules: ['imrelp'], inputs: relpInput }),
  ];
  const n = 30_000;
  const lines = numberedAuditLines(n);
  const text = lines.join('\n') + '\n';
  const dir = t.testdir({ app: {}, state: {} });
  writeFileSync(join(dir, 'app', 'audit.log'), text);
  const to = relays.flatMap((r) => ['--to', `relp://127.0.0.1:${r.port}`]);
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), ...to, '--once', '--state-dir', join(dir, 'state'), '--reconnect-max-delay', '500ms', '--log-format', 'json']);
  const union = () => relays.reduce((a, r) => a + outputBytes(r.outFile), 0);
  const failovers: number[] = [];
  const killed: Rsyslog[] = [];
  for (let k = 1; k <= 2; k++) {
    const target = (text.length * k) / 3;
    await untilTrue(() => union() >= target, () => `output stuck below ${target} bytes before kill ${k}\n${run.stderr()}`, 60_000);
    const victim = await inUse(relays);
    const others = relays.filter((r) => r !== victim && r.running);
    const before = others.map((r) => outputBytes(r.outFile));
    const t0 = Date.now();
    await victim.kill9();
    killed.push(victim);
    await untilTrue(() => others.some((r, i) => outputBytes(r.outFile) > before[i]), () => `no other relay took over after kill ${k}\n${run.stderr()}`, 30_000);
    failovers.push(Date.now() - t0);
  }
  t.equal(await run.exited, 0, 'auditfwd delivered everything and exited 0');
  t.equal(new Set(killed).size, 2, 'two different relays were killed, each while in use');
  const got = relays.flatMap((r) => r.lines());
  const { bad, torn, lost, repeats } = countDelivered(got, lines);
  t.same(bad, [], 'every line written by a relay is an input line (after a torn write at most)');
  t.equal(lost, 0, `zero lines lost of ${n}`);
  t.ok(failovers.every((ms) => ms < 5000), `failover within 5 s (${failovers.join(', ')} ms)`);
  t.ok(repeats <= n * 0.05, `repeats ${repeats} ≤ 5% of ${n}`);
  const summary = JSON.parse(run.stderr().split('\n').filter((l) => l.includes('all input delivered'))[0]) as { messages: number; resent: number };
  t.ok(repeats <= summary.resent, `repeats (${repeats}) all counted as resent (${summary.resent})`);
  t.comment(`${n} lines over 3 RELP relays, 2 kill -9 of the one in use: lost ${lost}, repeated ${repeats} (${((100 * repeats) / n).toFixed(2)}%), torn ${torn}, resent ${summary.resent}, failover ${failovers.join(' and ')} ms, per relay ${relays.map((r) => r.lines().length).join(' / ')}`);
});

t.test('plain TCP pool, the first member down from the start: everything goes to the second rsyslog', { skip: missingTcp }, async (t) => {
  const rs = await Rsyslog.start(t, { modules: ['imtcp'], inputs: tcpInput });
  const lines = numberedAuditLines(5000);
  const dir = t.testdir({ app: { 'audit.log': lines.join('\n') + '\n' }, state: {} });
  const run = runAuditfwd(t, ['--file', join(dir, 'app', 'audit.log'), '--to', `127.0.0.1:${await freePort()}`, '--to', `127.0.0.1:${rs.port}`, '--once', '--state-dir', join(dir, 'state')]);
  t.equal(await run.exited, 0, 'exit 0');
  await untilTrue(() => rs.lines().length >= lines.length, () => `rsyslog has ${rs.lines().length} lines`, 30_000);
  t.same(rs.lines(), lines, 'every line, in order, once');
});
