import { spawn } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { once } from 'node:events';

export const GNU_TIME = process.env.BENCH_NO_GNU_TIME ? undefined : existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const HZ = 100; // USER_HZ on Linux

/**
 * Runs a command and measures its CPU seconds (user + system, its waited-for children included)
 * and peak RSS: with GNU time when installed (Debian package `time`), else by polling /proc for the
 * process and its descendants (coarser: what ran between two polls may be missed).
 */
export function measured(cmd, args, { timeFile, env, stdio = ['ignore', 'ignore', 'pipe'], cwd } = {}) {
  const child = GNU_TIME
    ? spawn(GNU_TIME, ['-f', '%U %S %M', '-o', timeFile, cmd, ...args], { stdio, env, cwd })
    : spawn(cmd, args, { stdio, env, cwd });
  let stderr = '';
  child.stderr?.on('data', (d) => {
    if (stderr.length < 64 * 1024) stderr += d;
  });
  const poll = GNU_TIME ? undefined : pollTree(child.pid);
  const exited = once(child, 'exit').then(([code, signal]) => {
    let cpu = NaN;
    let rssKB = NaN;
    if (GNU_TIME) {
      const text = readFileSync(timeFile, 'utf8').trim().split('\n').pop();
      const [u, s, m] = text.split(/\s+/).map(Number);
      cpu = u + s;
      rssKB = m;
    } else {
      poll.stop();
      cpu = poll.cpuTicks / HZ;
      rssKB = poll.peakKB;
    }
    return { code, signal, cpu, rssMB: rssKB / 1024, stderr };
  });
  return {
    child,
    exited,
    /** The process to signal: under GNU time, its child (time forwards nothing). */
    get pid() {
      if (!GNU_TIME) return child.pid;
      return childrenOf(child.pid)[0];
    },
    stop(signal = 'SIGTERM') {
      const pid = this.pid;
      if (pid) {
        try {
          process.kill(pid, signal);
        } catch {}
      }
    },
  };
}

export function childrenOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Current RSS of a process in MB (VmRSS), its peak (VmHWM), and its private part (RssAnon). */
export function rssOf(pid) {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) / 1024;
    return { rss: get('VmRSS'), hwm: get('VmHWM'), anon: get('RssAnon') };
  } catch {
    return { rss: NaN, hwm: NaN, anon: NaN };
  }
}

function treeOf(pid) {
  const out = [pid];
  for (let i = 0; i < out.length; i++) out.push(...childrenOf(out[i]));
  return out;
}

function pollTree(root) {
  const ticks = new Map();
  let peakKB = 0;
  const sample = () => {
    for (const pid of treeOf(root)) {
      try {
        const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
        const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
        ticks.set(pid, Number(f[11]) + Number(f[12]));
        const hwm = /^VmHWM:\s+(\d+)/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
        if (hwm) peakKB = Math.max(peakKB, Number(hwm[1]));
      } catch {}
    }
  };
  const timer = setInterval(sample, 50);
  sample();
  return {
    get cpuTicks() {
      let t = 0;
      for (const v of ticks.values()) t += v;
      return t;
    },
    get peakKB() {
      return peakKB;
    },
    stop() {
      clearInterval(timer);
    },
  };
}

export const median = (xs) => {
  const v = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  return v.length % 2 ? v[(v.length - 1) / 2] : (v[v.length / 2 - 1] + v[v.length / 2]) / 2;
};

export const percentile = (sorted, p) => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : NaN);

export function machine() {
  const cpu = /model name\s*:\s*(.*)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown CPU';
  const mem = Number(/MemTotal:\s+(\d+)/.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1] ?? 0) / 1024 / 1024;
  const cores = readFileSync('/proc/cpuinfo', 'utf8').split('\n').filter((l) => l.startsWith('processor')).length;
  const kernel = readFileSync('/proc/sys/kernel/osrelease', 'utf8').trim();
  const load = readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ');
  return { cpu, cores, memGB: mem.toFixed(1), kernel, node: process.version, load };
}

export { readdirSync };
