#!/usr/bin/env node
// Peak RSS of auditfwd while N MB back up behind a dead drain, then the time to deliver them all.
//   node bench/spill-rss.mjs [MB=1024] [dead|slow] [more auditfwd flags...]
// Prints one JSON line. Needs `npm run build` first. Uses a temp folder it removes afterwards.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, openSync, readFileSync, rmSync, writeSync, closeSync, readdirSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MB = Number(process.argv[2] ?? 1024);
const mode = process.argv[3] ?? 'dead';
const BIN = fileURLToPath(new URL('../bin/auditfwd', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'auditfwd-spill-bench-'));
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function rss(pid) {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;
  } catch {
    return 0;
  }
}
function spillBytes() {
  try {
    return readdirSync(join(dir, 'spill')).filter((n) => n.endsWith('.seg')).reduce((n, f) => n + statSync(join(dir, 'spill', f)).size, 0);
  } catch {
    return 0;
  }
}

// Lines of ~1 KB with a sequence number, so order and completeness can be checked.
const file = join(dir, 'app', 'audit.log');
rmSync(join(dir, 'app'), { recursive: true, force: true });
await import('node:fs').then((fs) => fs.mkdirSync(join(dir, 'app')));
const pad = 'x'.repeat(1000);
const lines = Math.floor((MB * 1024 * 1024) / 1008);
const fd = openSync(file, 'w');
for (let i = 0; i < lines; i += 1000) {
  let chunk = '';
  for (let j = i; j < Math.min(lines, i + 1000); j++) chunk += `${String(j).padStart(7, '0')} ${pad}\n`;
  writeSync(fd, chunk);
}
closeSync(fd);

// Reserve a port, then leave it closed (dead drain) or accept and read slowly.
let received = 0;
let next = 0;
let disorder = 0;
let pending = Buffer.alloc(0);
let slowSocket;
let slowBytes = 0;
const server = createServer((sock) => {
  if (mode === 'slow') slowSocket = sock;
  sock.on('data', (d) => {
    if (mode === 'slow' && (slowBytes += d.length) >= 100 * 1024) sock.pause();
    pending = pending.length ? Buffer.concat([pending, d]) : d;
    let i = 0;
    for (;;) {
      const sp = pending.indexOf(32, i);
      if (sp === -1) break;
      const len = Number(pending.subarray(i, sp).toString());
      if (sp + 1 + len > pending.length) break;
      const msg = pending.subarray(sp + 1, sp + 1 + len);
      const seqAt = msg.lastIndexOf(32, msg.length - 1002) + 1;
      const seq = Number(msg.subarray(seqAt, seqAt + 7).toString());
      if (seq !== next) disorder++;
      next = seq + 1;
      received++;
      i = sp + 1 + len;
    }
    pending = pending.subarray(i);
  });
});
server.listen(0, '127.0.0.1');
await once(server, 'listening');
const port = server.address().port;
if (mode === 'dead') server.close();
else {
  // ~1 MB/s: 100 KiB every 100 ms, far slower than the file is read. (Pausing after a fixed time
  // instead let loopback deliver the whole file in the 10 ms windows: nothing backed up.)
  setInterval(() => {
    if (!slowSocket) return;
    slowBytes = 0;
    slowSocket.resume();
  }, 100).unref();
}

const start = Date.now();
const child = spawn('env', ['-u', 'NODE_OPTIONS', BIN, '--file', file, '--to', `127.0.0.1:${port}`, '--state-dir', dir, '--log-level', 'warn', '--reconnect-max-delay', '500ms', '--buffer-max-bytes', `${MB + 256}MiB`, ...process.argv.slice(4)], { stdio: ['ignore', 'ignore', 'inherit'] });
let peak = 0;
const target = lines * 1000 * 0.98;
while (spillBytes() < target && mode === 'dead') {
  peak = Math.max(peak, rss(child.pid));
  await sleep(100);
}
if (mode === 'slow') {
  for (let i = 0; i < 300; i++) {
    peak = Math.max(peak, rss(child.pid));
    await sleep(100);
  }
}
const backedUp = spillBytes();
const spilledAfterMs = Date.now() - start;
for (let i = 0; i < 20; i++) {
  peak = Math.max(peak, rss(child.pid));
  await sleep(100);
}
const peakWhileBackedUp = peak;
let deliverMs = 0;
if (mode === 'dead') {
  const drain = createServer((sock) => server.emit('connection', sock));
  drain.listen(port, '127.0.0.1');
  const t0 = Date.now();
  while (received < lines) {
    peak = Math.max(peak, rss(child.pid));
    await sleep(100);
  }
  deliverMs = Date.now() - t0;
  drain.close();
}
child.kill('SIGTERM');
await once(child, 'exit');
rmSync(dir, { recursive: true, force: true });
console.log(JSON.stringify({ mode, MB, lines, spilledBytes: backedUp, spilledAfterMs, peakRssMiB: +(peak / 1048576).toFixed(1), peakWhileBackedUpMiB: +(peakWhileBackedUp / 1048576).toFixed(1), received, disorder, deliverMs }));
process.exit(0);
