import { closeSync, existsSync, openSync, readdirSync, readFileSync, renameSync, statSync, writeSync } from 'node:fs';
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

/** A 36-character UUID whose last 12 hex digits are `seq`: unique, and the receiver can read it back. */
export function auditLine(sample, seq) {
  return sample.head + seq.toString(16).padStart(12, '0') + sample.tail + '\n';
}

export const SEQ_RE = /"auditID":"[0-9a-f-]{24}([0-9a-f]{12})"/;

/**
 * Builds (once, then reuses) a file of at least `mb` MB of real audit lines with unique auditIDs.
 * Returns its path, size and line count.
 */
export function buildInput(outDir, mb) {
  const path = join(outDir, `audit-${mb}MB.log`);
  const meta = path + '.lines';
  if (existsSync(path) && existsSync(meta)) {
    return { path, bytes: statSync(path).size, lines: Number(readFileSync(meta, 'utf8')) };
  }
  const samples = sampleLines();
  const target = mb * 1e6;
  const tmp = path + '.tmp';
  const fd = openSync(tmp, 'w');
  let bytes = 0;
  let seq = 0;
  let block = [];
  let blockBytes = 0;
  while (bytes < target) {
    const line = auditLine(samples[seq % samples.length], seq);
    seq++;
    block.push(line);
    blockBytes += line.length;
    bytes += line.length;
    if (blockBytes >= 4 << 20) {
      writeSync(fd, block.join(''));
      block = [];
      blockBytes = 0;
    }
  }
  if (block.length) writeSync(fd, block.join(''));
  closeSync(fd);
  renameSync(tmp, path);
  writeSync(openSync(meta, 'w'), String(seq));
  return { path, bytes, lines: seq };
}
