import type { Config } from '../config/config.js';
import type { Stats } from '../telemetry/stats.js';

export interface HealthSource {
  readonly stats: Stats;
  readonly phase: 'starting' | 'running' | 'stopping';
  readonly bufferState: { bytes: number; fullSinceMs?: number; spillProblem?: { code: string; sinceMs: number } };
  readonly destination: Config['to'];
}

export interface Verdict {
  ok: boolean;
  reason: string;
}

/**
 * /healthz: is auditfwd doing its job? Not when the drain has been unreachable, or the buffer full
 * (reading stalled), for longer than `thresholdMs`. Short outages are normal and stay healthy, so a
 * restart loop is not triggered by a drain that blips.
 */
export function health(p: HealthSource, thresholdMs: number, now = Date.now()): Verdict {
  const problems: string[] = [];
  const { stats } = p;
  if (p.destination.transport !== 'stdout' && !stats.drainConnected && now - stats.drainChangedMs > thresholdMs) {
    problems.push(`drain unreachable for ${Math.round((now - stats.drainChangedMs) / 1000)}s${stats.drainProblem ? ` (${stats.drainProblem})` : ''}`);
  }
  const full = p.bufferState.fullSinceMs;
  if (full !== undefined && now - full > thresholdMs) problems.push(`buffer full for ${Math.round((now - full) / 1000)}s`);
  const spill = p.bufferState.spillProblem;
  if (spill && now - spill.sinceMs > thresholdMs) problems.push(`spill cannot be written (${spill.code}) for ${Math.round((now - spill.sinceMs) / 1000)}s`);
  return problems.length ? { ok: false, reason: problems.join('; ') } : { ok: true, reason: p.phase };
}

/** /readyz: started (state loaded, sources open) and not shutting down. */
export function readiness(p: HealthSource): Verdict {
  return { ok: p.phase === 'running', reason: p.phase };
}
