// A log writer in its own process, for tests of the real binary: numbered real audit lines
// ({"seq":k,...}), written fast, with logrotate-style rename rotations between batches.
// usage: node rotating-writer.mjs <file> <batches> <linesPerBatch> [pauseMs]
// Each batch: half its lines, a pause (the reader catches up), then the other half just before the rename (audit.log -> audit.log.N,
// older backups shifted up as logrotate does), then a new empty file. Prints "done <lines>".
import { closeSync, existsSync, openSync, readFileSync, renameSync, writeSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const [file, batchesArg, perBatchArg, pauseArg = '300'] = process.argv.slice(2);
const batches = Number(batchesArg);
const perBatch = Number(perBatchArg);
const fixtures = fileURLToPath(new URL('../fixtures/k8s-audit/', import.meta.url));
const sample = ['falcosecurity-falco.jsonl', 'liggitt-audit2rbac.jsonl'].flatMap((f) => readFileSync(fixtures + f, 'utf8').split('\n').filter(Boolean));
const line = (k) => `{"seq":${k},` + sample[k % sample.length].slice(1) + '\n';

let seq = 0;
function write(fd, n) {
  // Many small writes, as a logger does, not one big one.
  for (let i = 0; i < n; i += 50) {
    let s = '';
    for (let j = i; j < Math.min(n, i + 50); j++) s += line(seq++);
    writeSync(fd, s);
  }
}

const pause = (ms) => new Promise((r) => setTimeout(r, ms));
let fd = openSync(file, 'a');
for (let b = 0; b < batches; b++) {
  write(fd, perBatch / 2);
  await pause(Number(pauseArg));
  write(fd, perBatch / 2);
  if (b === batches - 1) break;
  for (let n = b; n >= 1; n--) if (existsSync(`${file}.${n}`)) renameSync(`${file}.${n}`, `${file}.${n + 1}`);
  renameSync(file, `${file}.1`);
  closeSync(fd);
  fd = openSync(file, 'a');
}
closeSync(fd);
process.stdout.write(`done ${seq}\n`);
