import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shared sample data: CI clones the repo with `shared/` as a sibling; a worktree elsewhere falls
 * back to /work/shared.
 */
export function sharedDir(): string {
  const repoRoot = fileURLToPath(new URL('../..', import.meta.url));
  const sibling = join(repoRoot, '..', 'shared');
  return existsSync(join(sibling, 'data')) ? sibling : '/work/shared';
}

export const K8S_AUDIT_FILES = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'];

export function k8sAuditPath(name: string): string {
  return join(sharedDir(), 'data', 'k8s-audit', name);
}

/** Every real audit line, as it is in the file (no LF). */
export function k8sAuditLines(): string[] {
  return K8S_AUDIT_FILES.flatMap((f) => readFileSync(k8sAuditPath(f), 'utf8').split('\n').filter(Boolean));
}
