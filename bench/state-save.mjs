// What one save of a read position costs, in CPU (user + system) and wall time, for the two ways
// auditfwd has: the synchronous in-place slot write (positions.slots, once per commit) and the
// quick save of checkpoints.json (write a temp file, rename; every 50 ms). Per GB: one commit per
// 512 KiB read, 2048 per GB. Run after `npm run build`: node bench/state-save.mjs [saves]
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SlotFile } from '../dist/state/slot-file.js';
import { writeFileQuickly } from '../dist/state/durable.js';

const N = Number(process.argv[2] ?? 20000);
const dir = mkdtempSync(join(tmpdir(), 'auditfwd-state-bench-'));
const entry = (o) => ({ path: '/var/log/kubernetes/audit/audit.log', dev: 2049, ino: 5825721, fpLen: 1024, fp: 'ab'.repeat(16), offset: o, updatedAt: Date.now() });

async function measure(name, n, fn) {
  const c0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const wall = Number(process.hrtime.bigint() - t0) / 1e3 / n;
  const c = process.cpuUsage(c0);
  const cpu = (c.user + c.system) / n;
  console.log(`${name.padEnd(44)} ${cpu.toFixed(1).padStart(7)} µs CPU  ${wall.toFixed(1).padStart(7)} µs wall per save   ${((cpu * 2048) / 1e6).toFixed(4)} CPU s per GB at one save per 512 KiB`);
}

try {
  const slots = await SlotFile.create(dir, 'positions.slots', [], 0);
  await measure('slot: JSON of the entry + pwrite of 256 bytes', N, (i) => {
    const { path, ...rest } = entry(i);
    slots.put(0, Buffer.from(JSON.stringify(rest)));
  });
  await slots.close();
  const body = (i) => JSON.stringify({ version: 1, files: [entry(i)] });
  await measure('checkpoints.json quick save (1 entry)', Math.min(N, 5000), (i) => writeFileQuickly(dir, 'checkpoints.json', body(i)));
} finally {
  rmSync(dir, { recursive: true, force: true });
}
