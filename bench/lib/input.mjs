import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

/** The real audit events kept in the repository (sources in test/fixtures/k8s-audit/SOURCES.md). */
export function sampleAuditDir() {
  return join(REPO, 'test/fixtures/k8s-audit');
}

/** The real audit lines, each with its auditID found (every sample line has one). */
export function sampleLines() {
  const dir = sampleAuditDir();
  const lines = [];
  for (const f of readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort()) {
    for (const line of readFileSync(join(dir, f), 'utf8').split('\n')) {
      if (!line) continue;
      const at = line.indexOf('"auditID":"');
      if (at === -1) continue;
      lines.push({ head: line.slice(0, at + 11 + 24), tail: line.slice(at + 11 + 36) });
    }
  }
  return lines;
}

/**
 * `total` real audit lines (the sample over and over) in one buffer, and each line as a view of it,
 * as the file tailer hands lines to the encoder: for the benches of the encoder alone.
 */
export function repeatedAuditLines(total) {
  const dir = sampleAuditDir();
  const names = readdirSync(dir).filter((n) => n.endsWith('.jsonl')).sort();
  const sample = names.flatMap((f) => readFileSync(join(dir, f), 'utf8').split('\n').filter(Boolean));
  const text = Buffer.from(Array.from({ length: total }, (_, i) => sample[i % sample.length]).join('\n') + '\n');
  const lines = [];
  for (let p = 0; p < text.length; ) {
    const e = text.indexOf(10, p);
    lines.push(text.subarray(p, e));
    p = e + 1;
  }
  return { sample, text, lines };
}

/** A 36-character UUID whose last 12 hex digits are `seq`: unique, and the receiver can read it back. */
export function auditLine(sample, seq) {
  return sample.head + seq.toString(16).padStart(12, '0') + sample.tail + '\n';
}

export const SEQ_RE = /"auditID":"[0-9a-f-]{24}([0-9a-f]{12})"/;

/**
 * Builds (once per folder, then reuses) a file of at least `mb` MB of real audit lines with unique
 * auditIDs, and beside it the same lines as RFC 6587 octet-counted frames (for the receiver check).
 * Returns their paths, the size and the line count.
 */
export function buildInput(outDir, mb) {
  const path = join(outDir, `audit-${mb}MB.log`);
  const framedPath = path + '.framed';
  const meta = path + '.lines';
  if (existsSync(path) && existsSync(meta) && existsSync(framedPath)) {
    return { path, framedPath, bytes: statSync(path).size, lines: Number(readFileSync(meta, 'utf8')) };
  }
  const samples = sampleLines();
  const target = mb * 1e6;
  const fd = openSync(path + '.tmp', 'w');
  const framedFd = openSync(framedPath + '.tmp', 'w');
  let bytes = 0;
  let seq = 0;
  let block = [];
  let framed = [];
  let blockBytes = 0;
  const flush = () => {
    writeSync(fd, block.join(''));
    writeSync(framedFd, framed.join(''));
    block = [];
    framed = [];
    blockBytes = 0;
  };
  while (bytes < target) {
    const line = auditLine(samples[seq % samples.length], seq);
    seq++;
    block.push(line);
    // The lines are ASCII: characters are bytes.
    framed.push(`${line.length - 1} ${line.slice(0, -1)}`);
    blockBytes += line.length;
    bytes += line.length;
    if (blockBytes >= 4 << 20) flush();
  }
  flush();
  closeSync(fd);
  closeSync(framedFd);
  renameSync(path + '.tmp', path);
  renameSync(framedPath + '.tmp', framedPath);
  writeFileSync(meta, String(seq));
  return { path, framedPath, bytes, lines: seq };
}
