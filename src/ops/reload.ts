import { resolveConfig, type Config, type RawSettings } from '../config/config.js';
import { redact } from '../config/file.js';
import { reloadKeys } from '../config/options.js';
import type { Logger } from '../telemetry/log.js';

/** What a reload needs from the CLI and the pipeline (kept as interfaces so they can be faked). */
interface SettingsLike {
  raw: RawSettings;
}
interface Reconfigurable {
  reconfigure(cfg: Config, what: { sink: boolean; encoders: boolean }): void;
  /** Re-reads files that may change on disk (TLS material), in place; a failure keeps what worked. */
  reload?(): boolean;
}

type Rule = string | RegExp;
const matches = (rules: Rule[], key: string) => rules.some((r) => (typeof r === 'string' ? r === key : r.test(key)));

/**
 * How each setting (RawSettings key) is applied on SIGHUP: the settings table's `reload`. Anything
 * without one needs a restart: a new setting is safe by default and gets one once its part can apply it live.
 */
export const RELOAD_RULES = {
  /** Applied at once (the health threshold is read at each request). */
  immediate: reloadKeys('immediate') as Rule[],
  /** Applied by reconnecting: the old connection's unwritten batches go to the new one. */
  sink: reloadKeys('sink') as Rule[],
  /** Applied from the next batch read: the encoders are rebuilt between batches. */
  encoders: reloadKeys('encoders') as Rule[],
};

export interface ReloadOutcome {
  applied: string[];
  requiresRestart: string[];
  errors: string[];
}

/**
 * SIGHUP: reads the config file (and the same flags) again, applies what can change without losing
 * data, and says what did not. A configuration with errors is refused whole: the running one stays.
 */
export class Reloader<S extends SettingsLike> {
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    private current: SettingsLike,
    private readonly load: () => S,
    private readonly resolve: (s: S) => { cfg?: Config; errors: string[] },
    private readonly pipeline: Reconfigurable,
    private readonly log: Logger,
  ) {}

  /** Reloads one after the other, so that two quick SIGHUPs cannot interleave. */
  reload(): Promise<ReloadOutcome> {
    const next = this.running.then(() => this.reloadNow());
    this.running = next.catch(() => {});
    return next;
  }

  private reloadNow(): ReloadOutcome {
    // Certificates first: a rotated certificate is picked up even when the config file has an error.
    this.pipeline.reload?.();
    const fresh = this.load();
    const { cfg: checked, errors } = this.resolve(fresh);
    if (!checked) {
      this.log.error({ errors }, 'reload refused: the configuration has errors; still running the previous one');
      return { applied: [], requiresRestart: [], errors };
    }
    const before = this.current.raw as Record<string, unknown>;
    const after = fresh.raw as Record<string, unknown>;
    const changed = [...new Set([...Object.keys(before), ...Object.keys(after)])].filter(
      (k) => JSON.stringify(before[k]) !== JSON.stringify(after[k]),
    );
    const live = [...RELOAD_RULES.immediate, ...RELOAD_RULES.sink, ...RELOAD_RULES.encoders];
    const applied = changed.filter((k) => matches(live, k));
    const requiresRestart = changed.filter((k) => !matches(live, k));
    // What cannot change live keeps its running value, so the new config is consistent with it.
    const effective: Record<string, unknown> = { ...after };
    for (const k of requiresRestart) effective[k] = before[k];
    let cfg: Config;
    try {
      cfg = resolveConfig(effective as RawSettings);
    } catch (err) {
      this.log.error({ error: (err as Error).message }, 'reload refused; still running the previous configuration');
      return { applied: [], requiresRestart, errors: [(err as Error).message] };
    }
    // The summary below is logged at the more verbose of the two levels, so either way it is seen.
    const levels = this.log.levels.values;
    const louder = (levels[cfg.logLevel] ?? Infinity) < (levels[this.log.level] ?? Infinity);
    if (louder) this.log.level = cfg.logLevel;
    this.pipeline.reconfigure(cfg, {
      sink: applied.some((k) => matches(RELOAD_RULES.sink, k)),
      encoders: applied.some((k) => matches(RELOAD_RULES.encoders, k)),
    });
    const show = (keys: string[], from: Record<string, unknown>, to: Record<string, unknown>) =>
      Object.fromEntries(keys.map((k) => [k, { from: redact(k, oneDrain(k, from[k])) ?? null, to: redact(k, oneDrain(k, to[k])) ?? null }]));
    if (requiresRestart.length) {
      this.log.warn({ changed: show(requiresRestart, before, after) }, 'reload: these settings changed but take effect only after a restart');
    }
    this.log.info({ changed: show(applied, before, after) }, applied.length ? 'configuration reloaded' : 'configuration reloaded; nothing to change');
    this.log.level = cfg.logLevel;
    this.current = { raw: effective as RawSettings };
    return { applied, requiresRestart, errors: [] };
  }
}

/** One --to reads as it was given; a pool as its list. */
function oneDrain(key: string, v: unknown): unknown {
  return key === 'to' && Array.isArray(v) && v.length === 1 ? v[0] : v;
}
