import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Real audit events kept in the repository (sources and licences in test/fixtures/k8s-audit/SOURCES.md). */
const FIXTURES = fileURLToPath(new URL('../fixtures/k8s-audit', import.meta.url));

export const K8S_AUDIT_FILES = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'];

export function k8sAuditPath(name: string): string {
  return join(FIXTURES, name);
}

/** Every real audit line, as it is in the file (no LF). */
export function k8sAuditLines(): string[] {
  return K8S_AUDIT_FILES.flatMap((f) => readFileSync(k8sAuditPath(f), 'utf8').split('\n').filter(Boolean));
}

/** The real Kubernetes audit events of the fixtures, one JSON object per entry. */
export const auditLines = k8sAuditLines;

/**
 * `n` real audit events made unique: event k is sample event k mod N with `"seq":k` as its first
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
