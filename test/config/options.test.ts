import t from 'tap';
import { readFileSync } from 'node:fs';
import { resolveConfig } from '../../src/config/config.js';
import { flagsMarkdown, helpLine, rangeText } from '../../src/config/describe.js';
import { effectiveYaml, OPTION_TABLE } from '../../src/config/file.js';
import { camel, DEFAULTS, GROUPS, SETTINGS } from '../../src/config/options.js';
import { shownPath } from '../../src/config/secret-path.js';
import { choiceSetting, numberOrWord, numberSetting } from '../../src/config/validate.js';
import { RELOAD_RULES } from '../../src/ops/reload.js';
import { Backoff } from '../../src/sinks/backoff.js';
import { RELP_DEFAULTS } from '../../src/sinks/relp.js';
import { DEFAULT_ROTATE_WAIT_MS } from '../../src/sources/file/tailer.js';
import { SAFE_TIMEOUT_MS, WEBHOOK_LIMITS } from '../../src/sources/webhook.js';
import { parse } from 'yaml';

t.test('docs/flags.md is generated from the settings table (run `npm run docs` after changing it)', async (t) => {
  const onDisk = readFileSync(new URL('../../docs/flags.md', import.meta.url), 'utf8');
  t.equal(onDisk, flagsMarkdown(), 'docs/flags.md differs from the table: run npm run docs');
  for (const s of SETTINGS) t.match(onDisk, `\`--${s.flag}\``, `--${s.flag} is documented`);
});

t.test('the table is complete and consistent', async (t) => {
  const flags = SETTINGS.map((s) => s.flag);
  t.equal(new Set(flags).size, flags.length, 'each flag once');
  for (const s of SETTINGS) {
    t.ok(GROUPS.includes(s.group), `--${s.flag}: a help group`);
    t.ok(s.description.length > 0 && !s.description.includes('(default'), `--${s.flag}: a description; the default is added from the table`);
    if (s.default !== undefined && (s.kind === 'size' || s.kind === 'duration' || s.kind === 'integer')) {
      if (s.default === s.word) t.equal(numberOrWord(s.flag, s.default), s.word, `--${s.flag}: the default is its word`);
      else t.doesNotThrow(() => numberSetting(s.flag, s.default!), `--${s.flag}: the default ${s.default} is in its own range`);
      t.ok(rangeText(s), `--${s.flag}: the range is documented`);
    }
    if (s.kind === 'choice') t.equal(choiceSetting(s.flag, String(s.default)), s.default, `--${s.flag}: the default is one of the choices`);
  }
  const keys = new Set(SETTINGS.map((s) => camel(s.flag)));
  for (const rule of [...RELOAD_RULES.immediate, ...RELOAD_RULES.sink, ...RELOAD_RULES.encoders]) t.ok(keys.has(String(rule)), `reload rule ${String(rule)} names a setting`);
  t.strictSame(OPTION_TABLE.alias, { file: ['f'], to: ['t'], config: ['c'] });
  t.match(helpLine(SETTINGS.find((s) => s.flag === 'start-at')!), 'beginning|end (default beginning)');
});

t.test('modules built without a setting use the same default the flag has', async (t) => {
  const cfg = resolveConfig({ to: '-', listenWebhook: '127.0.0.1:0' });
  t.strictSame(RELP_DEFAULTS, { window: cfg.relpWindow, ackTimeoutMs: cfg.relpAckTimeoutMs, maxRefusals: cfg.relpMaxRefusals });
  t.equal(SAFE_TIMEOUT_MS, cfg.k8s.webhook!.safeTimeoutMs);
  t.strictSame(WEBHOOK_LIMITS, cfg.k8s.webhook!.limits);
  t.equal(DEFAULT_ROTATE_WAIT_MS, cfg.rotateWaitMs);
  t.equal((new Backoff() as unknown as { capMs: number }).capMs, cfg.reconnectMaxDelayMs);
});

t.test('--check-config prints every default that reads back on its own', async (t) => {
  const raw = { to: '-' };
  const eff = parse(effectiveYaml(OPTION_TABLE, raw, resolveConfig(raw) as unknown as Record<string, unknown>, 'flags')) as Record<string, unknown>;
  for (const s of SETTINGS.filter((x) => x.default !== undefined)) {
    const key = s.fileKey ?? s.flag.replace(/-/g, '_');
    if (s.requires) t.notOk(key in eff, `${key} needs --${s.requires}: not printed`);
    else t.equal(String(eff[key]), String(DEFAULTS[camel(s.flag)]), `${key}: the table's default`);
  }
  t.notOk('config' in eff || 'check_config' in eff, 'flags without a file key are not printed');
});

t.test('secret files are not echoed when the value is not a path', async (t) => {
  t.match(shownPath('webhook-token-file', 's3cret'), /not shown/);
  t.match(shownPath('key-passphrase-file', 'hunter2'), /not shown/);
  t.equal(shownPath('webhook-token-file', '/etc/token'), '/etc/token');
  t.equal(shownPath('ca', 'ca.pem'), 'ca.pem');
});

t.test('a number setting with a word takes the word, a number, and says both when given neither', async (t) => {
  t.equal(resolveConfig({ to: '-' }).tcpResendWindowBytes, 'auto', 'the default');
  t.equal(resolveConfig({ to: '-', tcpResendWindow: 'AUTO' }).tcpResendWindowBytes, 'auto');
  t.equal(resolveConfig({ to: '-', tcpResendWindow: '8MiB' }).tcpResendWindowBytes, 8 * 1024 * 1024);
  t.equal(resolveConfig({ to: '-', tcpResendWindow: 0 }).tcpResendWindowBytes, 0);
  t.throws(() => resolveConfig({ to: '-', tcpResendWindow: 'lots' }), { message: '--tcp-resend-window: "lots" is not a size (e.g. 65536, 64KiB, 16MiB or auto)' });
  t.throws(() => resolveConfig({ to: '-', tcpResendWindow: '2GiB' }), { message: /--tcp-resend-window: 2GiB is out of range \(0-1073741824 bytes\)$/ });
  t.match(rangeText(SETTINGS.find((s) => s.flag === 'tcp-resend-window')!), /to 1GiB, or auto$/);
});
