import t from 'tap';
import { join } from 'node:path';
import { ConfigError, resolveConfig, type RawSettings } from '../../src/config/config.js';
import { K8S_DEFAULTS, loadK8sFiles } from '../../src/config/k8s-config.js';

const k: RawSettings = { to: '-', format: 'k8s-audit' };
function bad(t: Tap.Test, raw: RawSettings, re: RegExp) {
  let caught: unknown;
  try {
    resolveConfig(raw);
  } catch (err) {
    caught = err;
  }
  t.ok(caught instanceof ConfigError, `ConfigError for ${JSON.stringify(raw)}`);
  t.match((caught as Error)?.message, re);
}

t.test('defaults: raw, nothing parsed, no webhook', async (t) => {
  const cfg = resolveConfig({ to: '-' });
  t.same(cfg.k8s, { format: 'raw', sdId: K8S_DEFAULTS.sdId, select: [], exclude: [], dedupe: undefined, webhook: undefined });
  t.equal(K8S_DEFAULTS.sdId, 'k8s-audit@47450');
});

t.test('valid k8s settings', async (t) => {
  const cfg = resolveConfig({
    ...k, select: ['verb=create', 'verb in (delete)'], exclude: ['user.username=system:kube-proxy'], sdId: 'audit@32473.1',
    dedupe: true, dedupeWindow: '30s', dedupeMaxEntries: '500', listenWebhook: '[::1]:9443', webhookMaxRequestBytes: '1MiB',
  });
  t.equal(cfg.k8s.select.length, 2);
  t.equal(cfg.k8s.exclude.length, 1);
  t.equal(cfg.k8s.sdId, 'audit@32473.1');
  t.same(cfg.k8s.dedupe, { maxEntries: 500, windowMs: 30_000 });
  t.match(cfg.k8s.webhook, { host: '::1', port: 9443, maxRequestBytes: 1024 ** 2, maxEventBytes: 256 * 1024 });
  t.match(resolveConfig({ ...k, listenWebhook: ':8080' }).k8s.webhook, { host: '0.0.0.0', port: 8080, maxRequestBytes: 12 * 1024 ** 2 });
  t.match(resolveConfig({ ...k, dedupe: true }).k8s.dedupe, { maxEntries: 100_000, windowMs: 300_000 });
  t.equal(resolveConfig({ to: '-', format: 'auto', select: ['verb'] }).k8s.format, 'auto');
});

t.test('bad k8s settings name the flag', async (t) => {
  bad(t, { ...k, select: ['verb=get'], exclude: ['user.username system:x'] }, /^--exclude: unexpected 'system:x' at column 15/);
  bad(t, { to: '-', dedupe: true }, /^--dedupe needs --format k8s-audit or auto/);
  bad(t, { to: '-', sdId: 'a@1' }, /^--sd-id needs --format/);
  bad(t, { ...k, format: 'yaml' }, /^--format: "yaml" is not one of raw, k8s-audit, auto/);
  bad(t, { ...k, sdId: 'k8saudit' }, /^--sd-id: "k8saudit" must be name@<private enterprise number>/);
  bad(t, { ...k, sdId: 'a=b@123' }, /^--sd-id/);
  bad(t, { ...k, sdId: 'a@b' }, /^--sd-id/);
  bad(t, { ...k, sdId: 'x'.repeat(30) + '@123' }, /^--sd-id/);
  bad(t, { ...k, dedupeWindow: '1m' }, /^--dedupe-window needs --dedupe/);
  bad(t, { ...k, dedupe: true, dedupeMaxEntries: '0' }, /^--dedupe-max-entries: 0 is out of range \(1-10000000\)/);
  bad(t, { ...k, dedupe: true, dedupeWindow: 'soon' }, /^--dedupe-window: "soon" is not a duration/);
  bad(t, { ...k, listenWebhook: 'localhost' }, /^--listen-webhook: "localhost" is not HOST:PORT/);
  bad(t, { ...k, listenWebhook: ':70000' }, /^--listen-webhook: port 70000 is out of range/);
  bad(t, { ...k, listenWebhook: ':0', once: true }, /^--listen-webhook: cannot be used with --once/);
  bad(t, { ...k, webhookTokenFile: 'x' }, /^--webhook-token-file needs --listen-webhook/);
  bad(t, { ...k, listenWebhook: ':0', webhookTlsCert: 'c.pem' }, /^--webhook-tls-key: needed with --webhook-tls-cert/);
  bad(t, { ...k, listenWebhook: ':0', webhookTlsKey: 'k.pem' }, /^--webhook-tls-cert: needed with --webhook-tls-key/);
  bad(t, { ...k, listenWebhook: ':0', webhookMaxEventBytes: '13MiB' }, /^--webhook-max-event-bytes: 13MiB is out of range/);
  bad(t, { ...k, listenWebhook: ':0', webhookMaxRequestBytes: 'big' }, /^--webhook-max-request-bytes: "big" is not a size/);
  bad(t, { ...k, listenWebhook: ':0', webhookTimeout: '50ms' }, /^--webhook-timeout: 50ms is below the minimum of 100 ms/);
  bad(t, { ...k, webhookTimeout: '5s' }, /^--webhook-timeout needs --listen-webhook/);
});

t.test('webhook files are read at startup', async (t) => {
  const dir = t.testdir({ empty: '', spaced: 'a b\n', token: '  tok-123\n' });
  const load = async (raw: RawSettings) => {
    const cfg = resolveConfig({ ...k, listenWebhook: ':0', ...raw });
    await loadK8sFiles(cfg.k8s);
    return cfg.k8s.webhook!;
  };
  t.equal((await load({ webhookTokenFile: join(dir, 'token') })).token, 'tok-123', 'trimmed');
  await t.rejects(load({ webhookTokenFile: join(dir, 'empty') }), /--webhook-token-file: .* must hold one token/);
  await t.rejects(load({ webhookTokenFile: join(dir, 'spaced') }), /--webhook-token-file/);
  await t.rejects(load({ webhookTlsCert: join(dir, 'empty'), webhookTlsKey: join(dir, 'empty') }), /--webhook-tls-cert\/--webhook-tls-key: not a usable certificate/);
  await t.rejects(load({ webhookTlsCert: join(dir, 'nope'), webhookTlsKey: join(dir, 'empty') }), /--webhook-tls-cert: cannot read .*nope \(ENOENT\)/);
  t.equal((await load({})).token, undefined);
});
