import t from 'tap';
import { join } from 'node:path';
import { parse } from 'yaml';
import { resolveConfig, type Config, type RawSettings } from '../../src/config/config.js';
import { effectiveYaml, loadConfigFile, mergeUnderFlags, resolveCollecting, type OptionTable } from '../../src/config/file.js';
import { parseSdElements, parseSdSpec, sdSpecsFromObject } from '../../src/config/sd-element.js';

// In-process (the CLI tests spawn the binary): the option table cli.ts reads flags and files with.
const OPTIONS: OptionTable = {
  key: { file: true, f: true, to: true, 'state-dir': true, stateDir: true, once: true, framing: true, 'poll-interval': true, 'max-message-bytes': true, 'sd-element': true, facility: true, help: true, config: true },
  boolean: ['once', 'help'],
  array: ['file', 'sd-element'],
  number: [],
  alias: { file: ['f'] },
};

const resolve = (raw: Record<string, unknown>) => resolveConfig(raw as RawSettings);

t.test('a config file: values by setting, their places, every error', async (t) => {
  const dir = t.testdir({
    'ok.yml': 'files: /var/log/a.log\nto: d:1\nstate-dir: /tmp/s\nonce: true\nsd_element: {"x@1": {a: 1}}\nfacility: 4\n',
    'bad.yml': 'to: d:99999\nonce: 1\nframing: [a]\nfiles: [1, {}]\nfacilty: 3\nhelp: true\npoll_interval: soon\n',
    'empty.yml': '',
    'scalar.yml': '42\n',
  });
  const ok = loadConfigFile(join(dir, 'ok.yml'), OPTIONS);
  t.strictSame(ok.errors, []);
  t.strictSame(ok.values, { file: ['/var/log/a.log'], to: 'd:1', stateDir: '/tmp/s', once: true, sdElement: ['x@1 a="1"'], facility: '4' });
  t.equal(ok.where.get('stateDir'), `${join(dir, 'ok.yml')}:3: state-dir`);
  const cfg = resolveCollecting({ ...ok.values }, resolve, ok.where).cfg as Config;
  t.equal(cfg.facility, 4);
  t.equal(cfg.structuredData, '[x@1 a="1"]');

  const badPath = join(dir, 'bad.yml');
  const bad = loadConfigFile(badPath, OPTIONS);
  t.strictSame(bad.errors, [
    `${badPath}:2: once: must be true or false, not a number`,
    `${badPath}:3: framing: must be a string, not a list`,
    `${badPath}:4: files[1]: must be a string, not a mapping`,
    `${badPath}:5: facilty: unknown key (did you mean facility?)`,
    `${badPath}:6: help: unknown key`,
  ]);
  const r = resolveCollecting({ ...bad.values }, resolve, bad.where);
  t.equal(r.cfg, undefined);
  t.strictSame(r.errors, [`${badPath}:1: to: port 99999 is out of range (1-65535)`, `${badPath}:7: poll_interval: "soon" is not a duration (e.g. 250ms, 5s, 1m)`]);

  t.strictSame(loadConfigFile(join(dir, 'empty.yml'), OPTIONS).values, {}, 'an empty file sets nothing');
  t.match(loadConfigFile(join(dir, 'scalar.yml'), OPTIONS), { unreadable: true, errors: [/scalar\.yml:1: the file must be a mapping/] });
});

t.test('flags win over the file; a flag error names the flag', async (t) => {
  const dir = t.testdir({ 'c.yml': 'to: d:1\nframing: lf\n' });
  const file = loadConfigFile(join(dir, 'c.yml'), OPTIONS);
  const merged = mergeUnderFlags({ framing: 'xml', once: undefined }, file);
  t.equal(merged.framing, 'xml');
  t.equal(merged.to, 'd:1');
  t.notOk(file.where.has('framing'), 'the file\'s framing is not in effect');
  t.strictSame(resolveCollecting(merged, resolve, file.where).errors, ['--framing: "xml" is not one of octet-counting, lf']);
  t.equal(mergeUnderFlags({ a: 1 }, undefined).a, 1);
  t.strictSame(resolveCollecting({}, resolve, new Map()).errors, ['--to is required (host:port, tcp://host:port, [::1]:6514 or - for stdout)'], 'a missing --to is reported once');
});

t.test('effective configuration: as given, else defaults; it reads back', async (t) => {
  const raw = { to: 'd:1', file: ['/a'], once: true };
  const yaml = effectiveYaml(OPTIONS, raw, resolve(raw) as unknown as Record<string, unknown>, 'flags');
  const eff = parse(yaml) as Record<string, unknown>;
  t.match(eff, { files: ['/a'], to: 'd:1', once: true, framing: 'octet-counting', poll_interval: '250ms', max_message_bytes: '128KiB', facility: 'user' });
  t.notOk('help' in eff || 'config' in eff || 'f' in eff, 'no flags that mean nothing in a file, no aliases');
});

t.test('--sd-element: parsing and validation', async (t) => {
  t.strictSame(parseSdSpec('instance@47450 az=z1 id="a \\"b\\" c"'), { id: 'instance@47450', params: [['az', 'z1'], ['id', 'a "b" c']] });
  t.equal(parseSdElements('sd-element', ['a@1 x=1', 'meta y="]"']), '[a@1 x="1"][meta y="\\]"]');
  const bad = (spec: string, re: RegExp) => t.throws(() => parseSdElements('sd-element', [spec]), { message: re }, spec);
  bad('', /empty element/);
  bad('x=1', /is a parameter; the element's SD-ID comes first/);
  bad('a@1 x', /parameter "x" has no "=value"/);
  bad('nope a=b', /not registered with IANA/);
  bad('a@b x=1', /must be name@<enterprise number>/);
  bad('a@1 b]=2', /parameter name "b]" is not a valid SD-NAME/);
  bad('a@1 x="unterminated', /parameter "x": unterminated quote/);
  t.throws(() => parseSdElements('sd-element', ['a@1', 'a@1']), { message: /given twice/ });
  t.strictSame(sdSpecsFromObject({ 'a@1': { q: 'x"y', n: null }, 'b@1': null }), ['a@1 q="x\\"y" n=""', 'b@1']);
});

t.test('--to given several times: a pool of one transport, in the order given', async (t) => {
  const cfg = resolve({ to: ['relp://a:2514', 'relp://b:2514', 'relp://[::1]:2514'], pool: 'round-robin' });
  t.same(cfg.destinations.map((d) => ('host' in d ? d.host : '-')), ['a', 'b', '::1']);
  t.same(cfg.to, cfg.destinations[0], 'to is the first');
  t.equal(cfg.pool, 'round-robin');
  t.equal(resolve({ to: 'a:1' }).pool, 'failover', 'failover by default');
  t.same(resolve({ to: ['a:1', 'b:2'], tls: true }).destinations.map((d) => d.transport), ['tls', 'tls'], '--tls applies to every member');
  t.throws(() => resolve({ to: ['relp://a:1', 'tcp://b:1'] }), /^--to: the drains of a pool use one transport \(relp:\/\/a:1 and tcp:\/\/b:1\)/);
  t.throws(() => resolve({ to: ['a:1', '-'] }), /^--to: the drains of a pool use one transport/);
  t.throws(() => resolve({ to: ['-', 'a:1'] }), /^--to: - \(stdout\) cannot be one of several drains/);
  t.throws(() => resolve({ to: ['a:1', 'tcp://a:1'] }), /^--to: tcp:\/\/a:1 is given twice/);
  t.throws(() => resolve({ to: ['a:1', 'b:0'] }), /^--to: port 0 is out of range/);
  t.throws(() => resolve({ to: ['a:1'], pool: 'random' }), /^--pool/);
});

t.test('to: as a list in the config file', async (t) => {
  const dir = t.testdir({ 'pool.yml': 'to:\n  - relp://r1:2514\n  - relp://r2:2514\npool: failover\n' });
  const loaded = loadConfigFile(join(dir, 'pool.yml'), { ...OPTIONS, array: [...OPTIONS.array, 'to'], key: { ...OPTIONS.key, pool: true } });
  t.strictSame(loaded.errors, []);
  const cfg = resolveCollecting({ ...loaded.values }, resolve, loaded.where).cfg as Config;
  t.same(cfg.destinations.map((d) => ('host' in d ? `${d.host}:${d.port}` : '-')), ['r1:2514', 'r2:2514']);
});

t.test('--careful-start: a duration, 0 turns it off, bounded at 1h', async (t) => {
  t.equal(resolve({ to: 'a:1' }).carefulStartMs, 10_000, '10 s by default');
  t.equal(resolve({ to: 'a:1', carefulStart: '0' }).carefulStartMs, 0, '0: off');
  t.equal(resolve({ to: 'a:1', carefulStart: '2500ms' }).carefulStartMs, 2500);
  t.throws(() => resolve({ to: 'a:1', carefulStart: '2h' }), /careful-start/, 'past 1h: refused, named');
});
