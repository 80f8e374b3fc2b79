import t from 'tap';
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { runAuditfwd } from '../helpers/proc.js';
import { shebangOf } from '../helpers/shebang.js';
import { fileKeyOf, SETTINGS } from '../../src/config/options.js';

const JOB = fileURLToPath(new URL('../../bosh/jobs/auditfwd/', import.meta.url));
const RENDER = fileURLToPath(new URL('../helpers/render-bosh.rb', import.meta.url));
const hasRuby = spawnSync('ruby', ['-e', 'require "erb"'], { stdio: 'ignore' }).status === 0;

/** The instance spec the director passes to templates. */
const SPEC = { deployment: 'pks-cluster-1', name: 'master', az: 'z1', id: '6f1c2a3e-5d8b-4b8e-9c1a-2b3c4d5e6f70', ip: '10.0.1.11' };

function render(dir: string, template: string, properties: Record<string, unknown>): { out: string; err: string; status: number | null } {
  const ctx = join(dir, 'ctx.json');
  writeFileSync(ctx, JSON.stringify({ properties, spec: SPEC }));
  const r = spawnSync('ruby', [RENDER, join(JOB, 'spec'), join(JOB, 'templates', template), ctx], { encoding: 'utf8' });
  return { out: r.stdout, err: r.stderr, status: r.status };
}

t.test('the BOSH job renders into a config auditfwd --check-config accepts', { skip: !hasRuby && 'ruby (Debian package ruby) is not installed' }, async (t) => {
  const dir = t.testdir({});
  const properties = { auditfwd: { drain: { address: 'logs.example.com', port: 6514 }, metrics_listen: '127.0.0.1:9100', director_name: 'bosh-1', buffer: { dir: '/var/vcap/data/auditfwd/spill', max_bytes: '2GiB', when_full: 'drop-oldest' } } };
  const config = render(dir, 'config.yml.erb', properties);
  t.equal(config.status, 0, config.err);
  writeFileSync(join(dir, 'config.yml'), config.out);
  const check = runAuditfwd(t, ['--config', join(dir, 'config.yml'), '--check-config']);
  t.equal(await check.exited, 0, check.stderr());
  const eff = parse(check.stdout().toString()) as Record<string, unknown>;
  t.strictSame(eff.files, ['/var/vcap/sys/log/kube-apiserver/audit.log'], 'the spec default');
  t.equal(eff.to, 'tcp://logs.example.com:6514');
  t.equal(eff.hostname, SPEC.ip, 'HOSTNAME is the instance IP, as syslog-release sends');
  t.equal(eff.state_dir, '/var/vcap/data/auditfwd/state');
  t.equal(eff.metrics_listen, '127.0.0.1:9100');
  t.match(eff, { buffer_dir: '/var/vcap/data/auditfwd/spill', buffer_max_bytes: '2GiB', when_full: 'drop-oldest' }, 'the spill settings');
  t.strictSame(eff.sd_element, [`instance@47450 director="bosh-1" deployment="${SPEC.deployment}" group="${SPEC.name}" az="${SPEC.az}" id="${SPEC.id}"`]);

  const bpm = render(dir, 'bpm.yml.erb', { auditfwd: { files: ['/var/vcap/sys/log/kube-apiserver/audit.log', '/var/vcap/sys/log/etcd/audit.log'] } });
  t.equal(bpm.status, 0, bpm.err);
  const proc = (parse(bpm.out) as { processes: Array<Record<string, any>> }).processes[0];
  t.equal(proc.args.at(-1), '/var/vcap/jobs/auditfwd/config/config.yml');
  // node's flags as bin/auditfwd's #! line gives them (bpm runs node, not the script's #! line).
  const { unset, env, flags } = shebangOf();
  t.ok(flags.includes('--no-concurrent-sparkplug'), 'the #! line names --no-concurrent-sparkplug');
  t.ok(flags.includes('--no-maglev'), 'the #! line names --no-maglev');
  t.ok(flags.includes('--no-liftoff'), 'the #! line names --no-liftoff');
  t.strictSame(proc.args.slice(0, flags.length), flags, 'the node flags of bin/auditfwd');
  t.strictSame(env, { MALLOC_ARENA_MAX: '1' }, 'the #! line sets one malloc arena');
  t.strictSame(proc.env, env, 'and so does bpm');
  t.strictSame(unset, ['NODE_EXTRA_CA_CERTS'], 'the #! line drops NODE_EXTRA_CA_CERTS; bpm passes only the env it names');
  t.strictSame(proc.capabilities, ['DAC_READ_SEARCH']);
  t.strictSame(
    proc.unsafe.unrestricted_volumes,
    ['/var/vcap/sys/log/kube-apiserver', '/var/vcap/sys/log/etcd'].map((path) => ({ path, writable: false, mount_only: true })),
    'each log folder, read-only',
  );
});

t.test('BOSH properties with awkward values cannot break the YAML; bad ones fail the deploy', { skip: !hasRuby && 'ruby (Debian package ruby) is not installed' }, async (t) => {
  const dir = t.testdir({});
  const odd = render(dir, 'config.yml.erb', { auditfwd: { drain: { address: '::1', port: 514 }, app_name: 'a: b # c', files: ['/x/y z.log'] } });
  t.equal(odd.status, 0, odd.err);
  writeFileSync(join(dir, 'config.yml'), odd.out);
  const check = runAuditfwd(t, ['--config', join(dir, 'config.yml'), '--check-config']);
  t.equal(await check.exited, 0, check.stderr());
  const eff = parse(check.stdout().toString()) as Record<string, unknown>;
  t.equal(eff.to, 'tcp://[::1]:514');
  t.equal(eff.app_name, 'a: b # c');
  t.strictSame(eff.files, ['/x/y z.log']);

  const pool = render(dir, 'config.yml.erb', { auditfwd: { drain: { addresses: ['r1.example.com', 'r2.example.com:2514', '::1', '[::2]:2515'], transport: 'relp', port: 2514, pool: 'round-robin' } } });
  t.equal(pool.status, 0, pool.err);
  writeFileSync(join(dir, 'pool.yml'), pool.out);
  const poolCheck = runAuditfwd(t, ['--config', join(dir, 'pool.yml'), '--check-config']);
  t.equal(await poolCheck.exited, 0, poolCheck.stderr());
  const poolEff = parse(poolCheck.stdout().toString()) as Record<string, unknown>;
  t.strictSame(poolEff.to, ['relp://r1.example.com:2514', 'relp://r2.example.com:2514', 'relp://[::1]:2514', 'relp://[::2]:2515'], 'drain.addresses: a pool, in order');
  t.equal(poolEff.pool, 'round-robin');

  const bad = render(dir, 'config.yml.erb', { auditfwd: { drain: { address: 'd', transport: 'udp' } } });
  t.not(bad.status, 0);
  t.match(bad.err, /auditfwd.drain.transport must be tcp, tls, relp, relp\+tls, nats or nats\+tls, not "udp"/);
  const missing = render(dir, 'config.yml.erb', {});
  t.not(missing.status, 0, 'the drain address is required');
  t.match(missing.err, /Can't find property 'auditfwd.drain.address'/);
});

t.test('the job spec\'s defaults are the settings table\'s', async (t) => {
  const fileKeys = new Map(SETTINGS.filter((s) => fileKeyOf(s)).map((s) => [fileKeyOf(s)!, s]));
  /** Properties that are not one setting: parts of --to, PEM contents and secrets written to files, the sd_element, bpm. */
  const composed = new Set(['drain.address', 'drain.addresses', 'drain.port', 'drain.transport', 'tls.ca', 'tls.certificate', 'tls.private_key', 'tls.private_key_passphrase', 'webhook.token', 'nats.creds', 'nats.nkey', 'nats.token', 'director_name', 'memory_limit']);
  /** Properties grouped under another name than their key; the others are their key with "_" for ".". */
  const renamed: Record<string, string> = {
    'drain.framing': 'framing',
    'drain.pool': 'pool',
    'buffer.when_full': 'when_full',
    'webhook.listen': 'listen_webhook',
    'webhook.tls.certificate': 'webhook_tls_cert',
    'webhook.tls.private_key': 'webhook_tls_key',
  };
  const spec = parse(readFileSync(join(JOB, 'spec'), 'utf8')) as { properties: Record<string, { default?: unknown }> };
  let compared = 0;
  for (const [name, prop] of Object.entries(spec.properties)) {
    const short = name.replace(/^auditfwd\./, '');
    if (composed.has(short)) continue;
    const key = renamed[short] ?? short.replace(/\./g, '_');
    const setting = fileKeys.get(key);
    if (!t.ok(setting, `${name} is the config key ${key}`)) continue;
    if (prop.default !== undefined && setting!.default !== undefined) {
      t.equal(String(prop.default), String(setting!.default), `${name}: the spec's default is the flag's`);
      compared++;
    }
  }
  t.ok(compared >= 5, `defaults compared (${compared})`);
});

/** Config-file keys a BOSH job has no use for, and why. */
const NOT_FOR_A_JOB: Record<string, string> = {
  once: 'a job follows its files for ever (monit would restart a process that exits)',
  ignore_positions: 'only for a one-off backfill with once',
  tls: 'drain.transport tls or relp+tls says it',
};

t.test('every config-file setting is reachable from the job spec', { skip: !hasRuby && 'ruby (Debian package ruby) is not installed' }, async (t) => {
  // The keys come from the settings table (every key a config file accepts), not from a list kept here.
  const keys = SETTINGS.map(fileKeyOf).filter((k): k is string => k !== undefined);
  t.ok(keys.length > 40 && keys.includes('servername') && keys.includes('unhealthy_after'), `${keys.length} keys`);
  // A manifest that sets every property the spec declares, with its example (else its default).
  const spec = parse(readFileSync(join(JOB, 'spec'), 'utf8')) as { properties: Record<string, { example?: unknown; default?: unknown }> };
  const manifest: Record<string, any> = {};
  const unset: string[] = [];
  for (const [name, p] of Object.entries(spec.properties)) {
    const value = p.example ?? p.default;
    if (value === undefined) unset.push(name);
    const parts = name.split('.');
    let node = manifest;
    for (const part of parts.slice(0, -1)) node = node[part] ??= {};
    node[parts.at(-1)!] = value;
  }
  t.strictSame(unset, [], 'each property without a default has an example');
  const dir = t.testdir({});
  const r = render(dir, 'config.yml.erb', manifest);
  t.equal(r.status, 0, r.err);
  const rendered = parse(r.out) as Record<string, unknown>;
  const missing = keys.filter((k) => !(k in rendered) && !(k in NOT_FOR_A_JOB));
  t.strictSame(missing, [], 'no setting is out of the job spec\'s reach');
  t.strictSame(Object.keys(rendered).filter((k) => !keys.includes(k)), [], 'and nothing rendered is unknown to auditfwd');
  t.strictSame(Object.keys(NOT_FOR_A_JOB).filter((k) => !keys.includes(k)), [], 'every exception is a real key');
  t.match(rendered, { servername: 'logs.example.com', key_passphrase_file: '/var/vcap/jobs/auditfwd/config/tls/key-passphrase', webhook_token_file: '/var/vcap/jobs/auditfwd/config/webhook/token' });
  t.hasStrict(rendered.sd_element, { 'origin@32473': { software: 'auditfwd' } }, 'extra structured data joins the instance element');

  // Each secret rendered into its own file is exactly the property's value.
  for (const [template, property] of [['key-passphrase.erb', 'tls.private_key_passphrase'], ['webhook-token.erb', 'webhook.token']] as const) {
    const [a, b] = property.split('.');
    const value = `secret-${a}`;
    const out = render(dir, template, { auditfwd: { drain: { address: 'd' }, [a]: b === 'token' ? { token: value } : { private_key_passphrase: value } } });
    t.equal(out.out.trim(), value, template);
  }
});

t.test('the buffer.dir description matches what an unset buffer.dir does', { skip: !hasRuby && 'ruby (Debian package ruby) is not installed' }, async (t) => {
  const dir = t.testdir({});
  const r = render(dir, 'config.yml.erb', { auditfwd: { drain: { address: 'logs.example.com' } } });
  writeFileSync(join(dir, 'config.yml'), r.out);
  const check = runAuditfwd(t, ['--config', join(dir, 'config.yml'), '--check-config']);
  t.equal(await check.exited, 0, check.stderr());
  const eff = parse(check.stdout().toString()) as Record<string, unknown>;
  const spec = parse(readFileSync(join(JOB, 'spec'), 'utf8')) as { properties: Record<string, { description: string }> };
  t.equal(eff.buffer_dir, '/var/vcap/data/auditfwd/state/spill', 'the spill is on by default');
  t.match(spec.properties['auditfwd.buffer.dir'].description, String(eff.buffer_dir));
});

t.test('a NATS drain: the job renders nats://, the subject, and the token to its own file', { skip: !hasRuby && 'ruby (Debian package ruby) is not installed' }, async (t) => {
  const dir = t.testdir({});
  const r = render(dir, 'config.yml.erb', { auditfwd: { drain: { address: 'nats.service.internal', port: 4222, transport: 'nats' }, nats_subject: 'audit.z1', nats: { token: 'secret' } } });
  t.equal(r.status, 0, r.err);
  const rendered = parse(r.out) as Record<string, unknown>;
  t.match(rendered, { to: 'nats://nats.service.internal:4222', nats_subject: 'audit.z1', nats_token_file: '/var/vcap/jobs/auditfwd/config/nats/token' });
  t.notMatch(r.out, /secret/, 'the token itself is only in its own file');
  const token = render(dir, 'nats-token.erb', { auditfwd: { nats: { token: 'secret' } } });
  t.equal(token.out.trim(), 'secret');
});
