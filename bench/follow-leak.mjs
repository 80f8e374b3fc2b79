#!/usr/bin/env node
// Whether a follower's heap keeps something per batch: auditfwd follows a file that grows by one
// line every 5 ms (about 200 batches a second), to a receiver that reads everything; heap snapshots
// after 5 s and 25 s; prints the Promise objects live in each (docs/design.md, "Races that leave
// nothing behind": 1,984 -> 9,714 before that fix, 96 -> 89 after).
// Usage: npm run build && node bench/follow-leak.mjs [another build's bin/auditfwd]
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const bin = process.argv[2] ?? fileURLToPath(new URL('../bin/auditfwd', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'auditfwd-follow-leak-'));
const wait = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** Promise objects in a .heapsnapshot (a snapshot collects garbage first: these are live). */
function promises(path) {
  const s = JSON.parse(readFileSync(path, 'utf8'));
  const fields = s.snapshot.meta.node_fields;
  const types = s.snapshot.meta.node_types[0];
  const [n, ti, ni] = [fields.length, fields.indexOf('type'), fields.indexOf('name')];
  let count = 0;
  for (let i = 0; i < s.nodes.length; i += n) if (types[s.nodes[i + ti]] === 'object' && s.strings[s.nodes[i + ni]] === 'Promise') count++;
  return count;
}

const server = createServer((sock) => sock.resume()).listen(0, '127.0.0.1');
let child;
let writer;
try {
  await new Promise((resolve) => server.once('listening', resolve));
  const file = join(dir, 'audit.log');
  const snaps = join(dir, 'snaps');
  writeFileSync(file, '');
  mkdirSync(snaps);
  const args = ['--heapsnapshot-signal=SIGUSR2', `--diagnostic-dir=${snaps}`, bin, '--file', file, '--state-dir', join(dir, 'state'), '--log-level', 'warn', '--to', `127.0.0.1:${server.address().port}`];
  child = spawn(process.execPath, args, { stdio: 'inherit' });
  const fd = openSync(file, 'a');
  let lines = 0;
  writer = setInterval(() => writeSync(fd, `{"kind":"Event","auditID":"id-${lines++}","stage":"ResponseComplete"}\n`), 5);
  const snapshot = async (count) => {
    child.kill('SIGUSR2');
    while (readdirSync(snaps).filter((f) => f.endsWith('.heapsnapshot')).length < count) await wait(100);
  };
  await wait(5000);
  await snapshot(1);
  await wait(20_000);
  await snapshot(2);
  await wait(2000); // the second file is complete
  const [first, second] = readdirSync(snaps).sort().map((f) => promises(join(snaps, f)));
  console.log(`${bin}: ${lines} lines written; live promises after 5 s ${first}, after 25 s ${second}`);
} finally {
  clearInterval(writer);
  child?.kill('SIGKILL');
  server.close();
  rmSync(dir, { recursive: true, force: true });
}
