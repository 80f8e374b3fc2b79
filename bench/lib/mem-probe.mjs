// Loaded with `node --import` into an auditfwd under bench/rss-breakdown.mjs: samples
// process.memoryUsage() and /proc/self/smaps_rollup, and at exit writes the sample taken at the
// highest RSS (plus the kernel's own peak, VmHWM) as JSON to $AUDITFWD_MEM_PROBE.
import { readFileSync, writeFileSync } from 'node:fs';

const out = process.env.AUDITFWD_MEM_PROBE;
const MB = 1024 * 1024;
const kB = (text, key) => Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? NaN) / 1024;
let peak;
const sample = (when) => {
  const m = process.memoryUsage();
  const roll = readFileSync('/proc/self/smaps_rollup', 'utf8');
  const s = {
    when,
    rss: m.rss / MB,
    heapTotal: m.heapTotal / MB,
    heapUsed: m.heapUsed / MB,
    external: m.external / MB,
    arrayBuffers: m.arrayBuffers / MB,
    anon: kB(roll, 'Anonymous'),
    file: kB(roll, 'Rss') - kB(roll, 'Anonymous'),
  };
  if (!peak || s.rss > peak.rss) peak = s;
};
// process.uptime(), not performance.now(): `performance` loads perf_hooks, which auditfwd itself
// no longer loads (src/clock.ts).
const start = process.uptime();
const timer = setInterval(() => sample(Math.round((process.uptime() - start) * 1000)), 10);
timer.unref();
sample(0);
process.on('exit', () => {
  sample('exit');
  const status = readFileSync('/proc/self/status', 'utf8');
  peak.hwm = kB(status, 'VmHWM');
  if (out) writeFileSync(out, JSON.stringify(peak));
});
