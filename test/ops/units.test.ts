// In-process tests of the ops modules (the CLI tests run them in a child process, which
// coverage does not see): the reloader, the HTTP endpoints, pretty logs, the swappable encoder.
import t from 'tap';
import pino from 'pino';
import { resolveConfig, type Config, type RawSettings } from '../../src/config/config.js';
import { FrameWriter } from '../../src/framing/frame-writer.js';
import { startOpsServer } from '../../src/ops/http.js';
import { prettyLine, prettyStream } from '../../src/telemetry/pretty.js';
import { Reloader } from '../../src/ops/reload.js';
import { Stats } from '../../src/telemetry/stats.js';
import type { Encoder } from '../../src/transforms/encoder.js';
import { SwappableEncoder } from '../../src/transforms/swappable.js';
import { get, parseMetrics } from '../helpers/ops.js';

function memoryLogger(level = 'info') {
  const lines: Array<Record<string, unknown>> = [];
  const log = pino({ level }, { write: (l: string) => lines.push(JSON.parse(l) as Record<string, unknown>) });
  return { log, lines };
}

t.test('Reloader: applies what can change live, names what needs a restart, refuses a bad file', async (t) => {
  const { log, lines } = memoryLogger('warn');
  const start: RawSettings = { to: 'a:1', logLevel: 'warn', memoryMaxBytes: '1MiB' };
  let next: { raw: RawSettings } = { raw: start };
  const calls: Array<{ cfg: Config; what: { sink: boolean; encoders: boolean } }> = [];
  const check = (s: { raw: RawSettings }) => {
    try {
      return { cfg: resolveConfig(s.raw), errors: [] };
    } catch (err) {
      return { errors: [(err as Error).message] };
    }
  };
  let rereads = 0;
  const pipeline = { reconfigure: (cfg: Config, what: { sink: boolean; encoders: boolean }) => calls.push({ cfg, what }), reload: () => ++rereads > 0 };
  const reloader = new Reloader({ raw: start }, () => next, check, pipeline, log);

  next = { raw: { ...start, to: 'b:2', logLevel: 'info', memoryMaxBytes: '2MiB', facility: 'local0' } };
  const [one, two] = await Promise.all([reloader.reload(), reloader.reload()]);
  t.strictSame(one, { applied: ['to', 'logLevel', 'facility'], requiresRestart: ['memoryMaxBytes'], errors: [] });
  t.strictSame(two.applied, [], 'a second SIGHUP right after finds nothing new');
  t.equal(calls[0].cfg.memoryMaxBytes, 1024 * 1024, 'a restart-only setting keeps its running value');
  t.strictSame(calls[0].what, { sink: true, encoders: true });
  t.equal(calls[0].cfg.facility, 16);
  t.equal(log.level, 'info');
  t.match(lines[0], { level: 40, msg: /only after a restart/, changed: { memoryMaxBytes: { from: '1MiB', to: '2MiB' } } });
  t.match(lines[1], { level: 30, msg: 'configuration reloaded', changed: { to: { from: 'a:1', to: 'b:2' } } });
  t.match(lines.slice(2), [{ level: 40, msg: /only after a restart/ }, { msg: /nothing to change/ }], 'the pending restart is named again');

  next = { raw: { to: 'b:2', framing: 'xml' } };
  const refused = await reloader.reload();
  t.match(refused, { applied: [], errors: [/--framing/] });
  t.match(lines.at(-1), { level: 50, msg: /reload refused/ });
  t.equal(calls.length, 2, 'the pipeline was not reconfigured');
  t.equal(rereads, 3, 'certificates are re-read at every SIGHUP, even when the file has errors');
});

t.test('ops server: /metrics, /healthz, /readyz, 404, 405', async (t) => {
  const stats = new Stats();
  stats.addLines('/var/log/a.log', 3);
  stats.messagesSent = 3;
  stats.bytesSent = 120;
  stats.addDropped('selector', 2);
  stats.drainConnected = true;
  const p = {
    stats,
    phase: 'running' as 'running' | 'stopping',
    bufferState: { bytes: 7 },
    destination: { transport: 'tcp' as const, host: 'd', port: 1 },
    settings: { unhealthyAfterMs: 1000 } as Config,
    lags: async () => new Map([['/var/log/a.log', 42]]),
  };
  const { log, lines } = memoryLogger();
  const server = await startOpsServer({ host: '127.0.0.1', port: 0 }, p, log);
  t.teardown(() => server.close());
  t.match(lines, [{ msg: /serving \/metrics/, address: `127.0.0.1:${server.port}` }]);
  const base = `http://127.0.0.1:${server.port}`;
  const m = parseMetrics((await get(`${base}/metrics`)).text);
  t.equal(m.get('auditfwd_lines_read_total{file="/var/log/a.log"}'), 3);
  t.equal(m.get('auditfwd_messages_sent_total'), 3);
  t.equal(m.get('auditfwd_bytes_sent_total'), 120);
  t.equal(m.get('auditfwd_messages_dropped_total{reason="selector"}'), 2);
  t.equal(m.get('auditfwd_lag_bytes{file="/var/log/a.log"}'), 42);
  t.equal(m.get('auditfwd_buffer_bytes'), 7);
  t.equal(m.get('auditfwd_drain_connected'), 1);
  stats.messagesSent = 5;
  t.equal(parseMetrics((await get(`${base}/metrics`)).text).get('auditfwd_messages_sent_total'), 5, 'read at each scrape');
  t.strictSame(await get(`${base}/healthz`), { status: 200, text: 'ok: running\n' });
  p.phase = 'stopping';
  t.strictSame(await get(`${base}/readyz`), { status: 503, text: 'unhealthy: stopping\n' });
  t.equal((await get(`${base}/x`)).status, 404);
  t.equal((await fetch(`${base}/metrics`, { method: 'POST' })).status, 405);
  const taken = startOpsServer({ host: '127.0.0.1', port: server.port }, p, log);
  await t.rejects(taken, { code: 'EADDRINUSE' }, 'a port in use is an error the CLI reports');
});

t.test('pretty log lines', async (t) => {
  const line = JSON.stringify({ level: 40, time: '2026-01-02T03:04:05.678Z', pid: 1, name: 'auditfwd', msg: 'drain down', drain: 'd:1', n: 3, why: 'a b' });
  t.equal(prettyLine(line, false), '03:04:05.678 WARN  drain down drain=d:1 n=3 why="a b"\n');
  t.match(prettyLine(line, true), /\x1b\[33mWARN \x1b\[0m drain down \x1b\[2mdrain=\x1b\[0md:1/);
  t.match(prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'x' }), false), /^00:00:00\.000 INFO  x\n$/, 'epoch-millisecond times too');
  t.equal(prettyLine('not json', false), 'not json', 'anything else passes through');
  t.type(prettyStream(2, false).write, 'function');
});

t.test('SwappableEncoder: a new encoder from the next batch on; a Reloadable one is told instead', async (t) => {
  const fake = (tag: string, log: string[]): Encoder => ({ beginBatch: () => log.push(`${tag}:begin`), encode: () => (log.push(`${tag}:encode`), 1) });
  const log: string[] = [];
  const sw = new SwappableEncoder(fake('old', log));
  const out = new FrameWriter();
  sw.beginBatch();
  sw.reconfigure({} as Config, () => fake('new', log));
  sw.encode(out, Buffer.from('x'), 1);
  sw.beginBatch();
  sw.encode(out, Buffer.from('y'), 1);
  t.strictSame(log, ['old:begin', 'old:encode', 'new:begin', 'new:encode'], 'never inside a batch');
  const told: Config[] = [];
  const reloadable = new SwappableEncoder({ ...fake('r', []), onReload: (c: Config) => told.push(c) } as Encoder);
  reloadable.reconfigure({ facility: 3 } as Config, () => t.fail('not rebuilt') as never);
  t.match(told, [{ facility: 3 }]);
});
