import type { FrameWriter } from '../framing/frame-writer.js';
import { sdName, type Rfc5424Framer } from '../framing/rfc5424.js';
import type { RateLimitedLog } from '../telemetry/log.js';
import type { Stats } from '../telemetry/stats.js';
import type { Deduper } from './dedupe.js';
import type { Encoder } from './encoder.js';
import type { EventFilter } from './selector.js';
import { EventScanner, Field, type AuditFields } from './k8s-scan.js';
import { EventHeaderWriter } from './k8s-header.js';
import { normaliseTimestamp, sdText } from './k8s-values.js';

export { MAX_SD_VALUE_BYTES, normaliseTimestamp, sdText } from './k8s-values.js';

/**
 * Default SD-ID. RFC 5424 section 7.2 reserves names without '@' for IANA; a private one is
 * `name@<private enterprise number>`. 47450 is the Cloud Foundry Foundation's number, the one
 * BOSH syslog-release sends as `instance@47450`, so drains of BOSH deployments see both under one
 * enterprise. Outside Cloud Foundry, set --sd-id to a name under your own number.
 */
export const DEFAULT_SD_ID = 'k8s-audit@47450';
export type Format = 'raw' | 'k8s-audit' | 'auto';

export interface K8sAuditOptions {
  format: 'k8s-audit' | 'auto';
  sdId: string;
  filter?: EventFilter;
  dedupe?: Deduper;
  /** k8s-audit mode warns (rate-limited) about lines that are not events; auto expects them. */
  warn?: RateLimitedLog;
}

/** The part of an audit.k8s.io Event that auditfwd reads; everything else stays in MSG untouched. */
export interface AuditEvent {
  kind?: unknown;
  apiVersion?: unknown;
  auditID: string;
  stage?: unknown;
  verb?: unknown;
  user?: { username?: unknown } | null;
  objectRef?: { resource?: unknown; namespace?: unknown; name?: unknown } | null;
  responseStatus?: { code?: unknown } | null;
  sourceIPs?: unknown;
  stageTimestamp?: unknown;
  requestReceivedTimestamp?: unknown;
  timestamp?: unknown;
}

/** An audit Event: `kind` Event (v1 and v1beta1 lines re-serialised without apiVersion are still events). */
export function isAuditEvent(v: unknown): v is AuditEvent {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const e = v as Record<string, unknown>;
  if (e.kind !== 'Event' || typeof e.auditID !== 'string' || e.auditID === '') return false;
  return e.apiVersion === undefined || (typeof e.apiVersion === 'string' && e.apiVersion.startsWith('audit.k8s.io/'));
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);

/** The fields of a parsed event that the header and SD element are made of. */
export function fieldsOf(e: AuditEvent): AuditFields {
  const user = e.user && typeof e.user === 'object' ? e.user : undefined;
  const ref = e.objectRef && typeof e.objectRef === 'object' ? e.objectRef : undefined;
  const code = e.responseStatus && typeof e.responseStatus === 'object' ? e.responseStatus.code : undefined;
  return {
    auditID: e.auditID,
    stage: str(e.stage),
    verb: str(e.verb),
    user: str(user?.username),
    resource: str(ref?.resource),
    namespace: str(ref?.namespace),
    name: str(ref?.name),
    code: typeof code === 'number' && Number.isFinite(code) ? code : undefined,
    sourceIP: Array.isArray(e.sourceIPs) ? str(e.sourceIPs[0]) : undefined,
    stageTimestamp: str(e.stageTimestamp),
    requestReceivedTimestamp: str(e.requestReceivedTimestamp),
    timestamp: str(e.timestamp),
  };
}

/**
 * The SD-ELEMENT for an event: params in a fixed order, absent fields left out. Built as one string
 * with the param names as constants (they are valid SD-NAMEs): this runs for every event.
 * `sdId` must already be a valid SD-ID (config checks it).
 */
export function auditSd(sdId: string, f: AuditFields): string {
  let out = '[' + sdId + ' auditID="' + sdText(f.auditID) + '"';
  if (f.stage !== undefined) out += ' stage="' + sdText(f.stage) + '"';
  if (f.verb !== undefined) out += ' verb="' + sdText(f.verb) + '"';
  if (f.user !== undefined) out += ' user="' + sdText(f.user) + '"';
  if (f.resource !== undefined) out += ' resource="' + sdText(f.resource) + '"';
  if (f.namespace !== undefined) out += ' namespace="' + sdText(f.namespace) + '"';
  if (f.name !== undefined) out += ' name="' + sdText(f.name) + '"';
  if (f.code !== undefined) out += ' code="' + sdText(String(f.code)) + '"';
  if (f.sourceIP !== undefined) out += ' sourceIP="' + sdText(f.sourceIP) + '"';
  return out + ']';
}

const OPEN_BRACE = 0x7b;

/**
 * Reads audit Events: TIMESTAMP is when the event happened, MSGID its stage, one SD element carries
 * who did what to which object; MSG stays the line byte for byte. A line that is not an Event goes
 * out as `raw` would send it, and is counted, never dropped. Selectors and de-duplication apply here.
 */
export class K8sAuditEncoder implements Encoder {
  private readonly sdId: string;
  private readonly scanner = new EventScanner();
  private readonly header: EventHeaderWriter;
  /** The top-level keys the selectors look at: only these are parsed, and only when there are selectors. */
  private readonly filterKeys: ReadonlySet<string> | undefined;

  constructor(
    private readonly framer: Rfc5424Framer,
    private readonly stats: Stats,
    private readonly opts: K8sAuditOptions,
  ) {
    this.sdId = sdName(opts.sdId);
    this.header = new EventHeaderWriter(framer, this.sdId);
    this.filterKeys = opts.filter?.active ? opts.filter.topLevelKeys() : undefined;
    if (this.scanner.fastPathError !== undefined) {
      opts.warn?.warn('scanner-fast-path', { err: this.scanner.fastPathError }, 'the audit scanner runs without its WebAssembly fast path: events cost about 1.3x the CPU');
    }
  }

  beginBatch(): void {
    this.framer.beginBatch();
  }

  encode(out: FrameWriter, line: Buffer, originalLength: number): number {
    // Cheap checks first, so that lines that cannot be events are never scanned. A line cut at
    // --max-message-bytes is no longer JSON.
    if (originalLength === line.length && firstNonSpace(line) === OPEN_BRACE) {
      const sc = this.scanner;
      if (sc.scan(line, this.filterKeys)) {
        if (this.filterKeys && !this.opts.filter!.accepts(sc.selected)) return this.filtered();
        if (this.opts.dedupe && this.isDuplicate(sc.text(Field.auditID)!, sc.text(Field.stage))) return 0;
        this.stats.auditEvents++;
        if (this.framer.appendWithHeader(out, this.header.write(sc), line, originalLength).truncated) this.stats.linesTruncated++;
        return 1;
      }
    }
    return this.encodeOther(out, line, originalLength);
  }

  encodeParsed(out: FrameWriter, value: object, line: Buffer): number {
    return isAuditEvent(value) ? this.encodeEvent(out, value, line) : this.encodeOther(out, line, line.length);
  }

  /** For sources that already hold the parsed event (the webhook): `line` is its serialised form. */
  encodeEvent(out: FrameWriter, event: AuditEvent, line: Buffer, originalLength = line.length): number {
    if (this.opts.filter && !this.opts.filter.accepts(event)) return this.filtered();
    return this.encodeFields(out, fieldsOf(event), line, originalLength);
  }

  private filtered(): number {
    this.stats.addDropped('filtered', 1);
    return 0;
  }

  /** Counts a duplicate; `auditID` and `stage` are read only when dedupe is on. */
  private isDuplicate(auditID: string, stage: string | undefined): boolean {
    if (!this.opts.dedupe?.isDuplicate(auditID, stage ?? '')) return false;
    this.stats.addDropped('duplicate', 1);
    return true;
  }

  private encodeFields(out: FrameWriter, f: AuditFields, line: Buffer, originalLength: number): number {
    if (this.isDuplicate(f.auditID, f.stage)) return 0;
    this.stats.auditEvents++;
    const timestamp =
      normaliseTimestamp(f.stageTimestamp) ?? normaliseTimestamp(f.requestReceivedTimestamp) ?? normaliseTimestamp(f.timestamp);
    const meta = { timestamp, msgId: f.stage, structuredData: auditSd(this.sdId, f) };
    if (this.framer.append(out, line, originalLength, meta).truncated) this.stats.linesTruncated++;
    return 1;
  }

  private encodeOther(out: FrameWriter, line: Buffer, originalLength: number): number {
    this.stats.nonEventLines++;
    if (this.opts.format === 'k8s-audit') {
      this.opts.warn?.warn('non-event', { bytes: originalLength }, 'line is not a Kubernetes audit Event; forwarded as raw');
    }
    if (this.framer.append(out, line, originalLength).truncated) this.stats.linesTruncated++;
    return 1;
  }
}

function firstNonSpace(line: Buffer): number {
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (c !== 0x20 && c !== 0x09) return c;
  }
  return -1;
}
