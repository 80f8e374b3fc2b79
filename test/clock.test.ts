import t from 'tap';
import { createServer, type Socket } from 'node:net';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { processStartMs, uptimeMs, wallClock, wallMicros } from '../src/clock.js';
import { membersOf } from '../src/sinks/resolve.js';
import { runAuditfwd } from './helpers/proc.js';

t.test('wallClock: the monotonic clock\'s microseconds, on the wall clock', async (t) => {
  let mono = 5_000_000.25; // µs since start
  let wall = 1_700_000_000_000; // ms since the epoch
  const clock = wallClock(() => mono, () => wall);
  t.equal(clock(), wall * 1000 + 0, 'anchored at the wall clock');
  mono += 1234.5;
  wall += 1; // Date.now() has moved one whole millisecond
  t.equal(clock(), 1_700_000_000_000_000 + 1234.5, 'keeps the monotonic clock\'s microseconds within 2 ms of the wall clock');
  mono += 1_000_000;
  wall += 1001; // the two clocks drift apart by less than 2 ms: no jump
  t.equal(clock(), 1_700_000_000_000_000 + 1_001_234.5, 'a drift under 2 ms moves nothing');
  // A suspended VM: the wall clock went on 30 s, the monotonic clock did not.
  wall += 30_000;
  mono += 10;
  t.equal(clock(), wall * 1000, 'a wall clock 30 s ahead is followed at once');
  mono += 500;
  t.equal(clock(), wall * 1000 + 500, 'and the microseconds go on from there');
  // A wall clock stepped back (NTP): followed too.
  wall -= 60_000;
  mono += 100;
  t.equal(clock(), wall * 1000, 'a wall clock stepped back 60 s is followed');
});

t.test('the process clocks agree with Date.now()', async (t) => {
  // Read between two Date.now(): whatever the scheduler does in between, the clocks must fall inside.
  const before = Date.now();
  const wall = wallMicros() / 1000;
  const started = processStartMs + uptimeMs();
  const after = Date.now();
  // 2 ms: the wall clock's tolerance; 1 ms more: Date.now() counts whole milliseconds.
  t.ok(wall >= before - 3 && wall <= after + 3, `wallMicros is the wall clock (${before} <= ${wall} <= ${after}, within 3 ms)`);
  t.ok(started >= before - 1 && started <= after + 1, `start + uptime is now (${before} <= ${started} <= ${after}, within 1 ms)`);
  t.ok(processStartMs <= before && processStartMs > before - 3_600_000, 'the process started in the last hour');
});

/**
 * The global `performance` loads perf_hooks, and an ESM import of node:dns loads dns/promises: the
 * built binary, forwarding a file to a TCP drain, loads neither (docs/design.md, "Clocks").
 */
t.test('the binary loads neither perf_hooks nor dns/promises', async (t) => {
  const dir = t.testdir({});
  const probe = join(dir, 'probe.cjs');
  writeFileSync(probe, `process.on('exit', () => process.stderr.write('modules: ' + JSON.stringify(process.moduleLoadList) + '\\n'));\n`);
  const file = join(dir, 'audit.log');
  writeFileSync(file, 'one\ntwo\n');
  const got: Buffer[] = [];
  const sockets = new Set<Socket>();
  const server = createServer((s) => {
    sockets.add(s);
    s.on('data', (d) => got.push(d));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => {
    for (const s of sockets) s.destroy();
    server.close();
  });
  const port = (server.address() as { port: number }).port;
  const run = runAuditfwd(t, ['--once', '--file', file, '--state-dir', join(dir, 'state'), '--to', `127.0.0.1:${port}`, '--log-level', 'info'], { nodeOptions: `--require ${probe}` });
  t.equal(await run.exited, 0, 'exits 0', { stderr: run.stderr() });
  t.match(Buffer.concat(got).toString(), /one[^]*two/, 'the lines arrived');
  const modules = JSON.parse(/modules: (.*)/.exec(run.stderr())![1]) as string[];
  t.ok(modules.includes('NativeModule net'), 'the probe sees the modules (net is loaded)');
  t.notOk(modules.some((m) => /perf_hooks|internal\/perf\/performance$/.test(m)), 'no perf_hooks');
  t.notOk(modules.some((m) => /dns\/promises/.test(m)), 'no dns/promises');
});

t.test('drain names are looked up with node:dns', async (t) => {
  const members = await membersOf([{ transport: 'tcp', host: 'localhost', port: 6514 }]);
  t.ok(members.length >= 1, `localhost is one member or one per address (${members.map((m) => m.address ?? m.name).join(', ')})`);
  for (const m of members) if (m.address !== undefined) t.match(m.address, /^(127\.|::1$)/, 'an address of localhost');
  const unknown = await membersOf([{ transport: 'tcp', host: 'no-such-host.invalid', port: 6514 }]);
  t.same(unknown.map((m) => [m.name, m.address]), [['tcp://no-such-host.invalid:6514', undefined]], 'a name that does not resolve stays one member, resolved again at each connect');
});
