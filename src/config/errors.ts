/**
 * A bad invocation or configuration: exit code 2 and one line naming the setting. Every module of
 * the config folder throws it directly; it lives alone so that none of them imports config.ts.
 */
export class ConfigError extends Error {}
