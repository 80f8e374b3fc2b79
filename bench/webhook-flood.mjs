#!/usr/bin/env node
// Peak RSS of auditfwd's webhook under a flood: N concurrent POSTs of M MiB of tiny events each,
// while a legitimate client posts one small EventList every 200 ms and times each answer.
//   node bench/webhook-flood.mjs [N=16] [MiB=12] [path to bin/auditfwd] [more auditfwd flags...]
// Prints one JSON line. Needs `npm run build` first.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:http';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

const N = Number(process.argv[2] ?? 16);
const MIB = Number(process.argv[3] ?? 12);
const BIN = process.argv[4] ?? fileURLToPath(new URL('../bin/auditfwd', import.meta.url));
const extra = process.argv.slice(5);

const vmHWM = (pid) => Number(/VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))[1]) * 1024;

/** A drain that reads and discards. */
const drain = createServer((s) => s.resume());
await new Promise((r) => drain.listen(0, '127.0.0.1', r));

const child = spawn(BIN, ['--to', `127.0.0.1:${drain.address().port}`, '--listen-webhook', '127.0.0.1:0', '--format', 'k8s-audit', '--log-level', 'info', ...extra], { stdio: ['ignore', 'ignore', 'pipe'] });
let log = '';
const port = await new Promise((resolve) => {
  child.stderr.on('data', (d) => {
    log += d;
    const m = /"port":(\d+)[^\n]*"msg":"webhook listening"/.exec(log);
    if (m) resolve(Number(m[1]));
  });
});
const idle = vmHWM(child.pid);

// The flood: tiny events, as many as fit in MiB.
const tiny = (i) => `{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata","auditID":"f-${i}","stage":"ResponseComplete","verb":"get"}`;
const items = [];
let size = 40;
for (let i = 0; size < MIB * 1024 * 1024 - 200; i++) {
  const e = tiny(i);
  items.push(e);
  size += e.length + 1;
}
const big = Buffer.from(`{"kind":"EventList","apiVersion":"audit.k8s.io/v1","items":[${items.join(',')}]}`);

function post(body) {
  const t0 = Date.now();
  return new Promise((resolve) => {
    const req = request({ host: '127.0.0.1', port, method: 'POST', path: '/k8s-audit', agent: false, headers: { 'content-type': 'application/json', 'content-length': body.length } }, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, ms: Date.now() - t0 }));
    });
    req.on('error', () => resolve({ status: 'error', ms: Date.now() - t0 }));
    req.end(body);
  });
}

let flooding = true;
const legit = [];
const small = Buffer.from(`{"kind":"EventList","items":[${tiny('legit')}]}`);
const legitLoop = (async () => {
  while (flooding) {
    legit.push(await post(small));
    await new Promise((r) => setTimeout(r, 200));
  }
})();
const t0 = Date.now();
const flood = await Promise.all(Array.from({ length: N }, () => post(big)));
const floodMs = Date.now() - t0;
flooding = false;
await legitLoop;
const peak = vmHWM(child.pid);
child.kill('SIGTERM');
await new Promise((r) => child.on('exit', r));
drain.close();
const statuses = (rs) => rs.reduce((m, r) => ((m[r.status] = (m[r.status] ?? 0) + 1), m), {});
console.log(
  JSON.stringify({
    requests: N,
    requestMiB: +(big.length / 1048576).toFixed(2),
    eventsPerRequest: items.length,
    idleRssMB: +(idle / 1e6).toFixed(1),
    peakRssMB: +(peak / 1e6).toFixed(1),
    floodMs,
    flood: statuses(flood),
    legit: statuses(legit),
    legitMaxMs: Math.max(...legit.map((r) => r.ms)),
  }),
);
