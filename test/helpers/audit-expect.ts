/** What auditfwd's k8s-audit header must say about an event, worked out from the JSON independently of src/. */

export const get = (o: unknown, ...path: string[]): unknown =>
  path.reduce<unknown>((v, k) => (v && typeof v === 'object' ? (v as Record<string, unknown>)[k] : undefined), o);

/** The SD params, in the documented order; absent or empty fields are left out. */
export function expectedParams(e: Record<string, unknown>): Array<[string, string]> {
  const p: Array<[string, string]> = [];
  const add = (k: string, v: unknown) => {
    if (v !== undefined && v !== null && v !== '') p.push([k, String(v)]);
  };
  add('auditID', e.auditID);
  add('stage', e.stage);
  add('verb', e.verb);
  add('user', get(e, 'user', 'username'));
  add('resource', get(e, 'objectRef', 'resource'));
  add('namespace', get(e, 'objectRef', 'namespace'));
  add('name', get(e, 'objectRef', 'name'));
  add('code', get(e, 'responseStatus', 'code'));
  add('sourceIP', (e.sourceIPs as string[] | undefined)?.[0]);
  return p;
}

/** The event's time as the header must carry it: stageTimestamp, else requestReceivedTimestamp, else timestamp. */
export function eventTime(e: Record<string, unknown>): string {
  return (e.stageTimestamp ?? e.requestReceivedTimestamp ?? e.timestamp) as string;
}
