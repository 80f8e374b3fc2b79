import t from 'tap';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as real from '../../../src/sources/file/open-regular.js';
import type { FileTailer } from '../../../src/sources/file/tailer.js';
import { TailHarness } from '../../helpers/tail-harness.js';

/**
 * A writer that rotates logrotate-style (audit.log -> .1 -> .2 …) faster than the tailer looks: the
 * tailer opens the path while it holds one file, and before it has listed the backups the writer
 * renames that very file to .1 and starts the next. That file was taken for logrotate's copy of the
 * one just opened and never read: 8,000 lines lost by the built binary under load
 * (test/e2e/rotation-load.test.ts, once in CI). Here the rename is made to happen at that instant.
 */
const N = 200;
const lines = (from: number) => Array.from({ length: N }, (_, i) => `${from + i} ${'x'.repeat(60)}\n`).join('');

t.test('a file renamed between its open at the path and the look for skipped backups is read', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  let atOpen: (() => void) | undefined;
  const { FileTailer: Tailer } = await t.mockImport<typeof import('../../../src/sources/file/tailer.js')>('../../../src/sources/file/tailer.js', {
    '../../../src/sources/file/open-regular.js': {
      ...real,
      openRegular: async (p: string) => {
        const fh = await real.openRegular(p);
        if (p === path && atOpen) {
          const rotate = atOpen;
          atOpen = undefined;
          rotate();
        }
        return fh;
      },
    },
  });
  const h = new TailHarness(path, join(dir, 'state'), {}, 64 * 1024, Tailer as typeof FileTailer);
  t.teardown(() => h.stop());
  writeFileSync(path, lines(0)); // A
  await h.start();
  await h.waitDelivered(N);
  // The writer rotates twice while the tailer is at A's end: B is live, then .1, C is live.
  renameSync(path, `${path}.1`);
  writeFileSync(path, lines(N)); // B
  renameSync(`${path}.1`, `${path}.2`);
  renameSync(path, `${path}.1`);
  writeFileSync(path, lines(2 * N)); // C
  // The tailer's next open of the path finds C; right after it, the writer rotates a third time.
  atOpen = () => {
    renameSync(`${path}.2`, `${path}.3`);
    renameSync(`${path}.1`, `${path}.2`);
    renameSync(path, `${path}.1`);
    writeFileSync(path, lines(3 * N)); // D
  };
  await h.waitDelivered(4 * N);
  await h.stop();
  t.equal(atOpen, undefined, 'the third rotation came right after the open');
  const seqs = h.delivered.map((l) => Number(l.split(' ')[0]));
  t.same(seqs, Array.from({ length: 4 * N }, (_, i) => i), 'A, B, C and D: every line once, in order', { runs: runs(seqs), log: h.log.events.map((e) => e.msg) });
});

function runs(seqs: number[]): string {
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= seqs.length; i++) if (i === seqs.length || seqs[i] !== seqs[i - 1] + 1) (out.push(`${seqs[start]}-${seqs[i - 1]}`), (start = i));
  return out.join(',');
}
