import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';

/** The shared data folder: `../shared` beside the repository (CI), else /work/shared (worktrees). */
export function sharedDir(): string {
  const beside = fileURLToPath(new URL('../../../shared', import.meta.url));
  return existsSync(beside) ? beside : '/work/shared';
}

/** The real Kubernetes audit events of the shared sample data, one JSON object per entry. */
export function auditLines(): string[] {
  const dir = join(sharedDir(), 'data', 'k8s-audit');
  return ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) =>
    readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean),
  );
}

/**
 * `n` real audit events made unique: event k is sample event k mod 88 with `"seq":k` as its first
 * field, so a receiver can tell every line apart and a test can find what is missing or repeated.
 */
export function numberedAuditLines(n: number): string[] {
  const sample = auditLines();
  const out: string[] = new Array(n);
  for (let k = 0; k < n; k++) out[k] = `{"seq":${k},` + sample[k % sample.length].slice(1);
  return out;
}

export function seqOf(line: string): number {
  const m = /^\{"seq":(\d+),/.exec(line);
  return m ? Number(m[1]) : -1;
}
