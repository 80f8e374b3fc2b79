import t from 'tap';
import { appendFileSync, renameSync, writeFileSync } from 'node:fs';
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

/** The tailer with openRegular wrapped: `hook.atOpen`, when set, runs once right after the next open of `path`. */
async function hookedTailer(t: Tap.Test, path: string): Promise<{ Tailer: typeof FileTailer; hook: { atOpen?: () => void } }> {
  const hook: { atOpen?: () => void } = {};
  const { FileTailer: Tailer } = await t.mockImport<typeof import('../../../src/sources/file/tailer.js')>('../../../src/sources/file/tailer.js', {
    '../../../src/sources/file/open-regular.js': {
      ...real,
      openRegular: async (p: string) => {
        const fh = await real.openRegular(p);
        const rotate = p === path ? hook.atOpen : undefined;
        if (rotate) {
          hook.atOpen = undefined;
          rotate();
        }
        return fh;
      },
    },
  });
  return { Tailer: Tailer as typeof FileTailer, hook };
}

t.test('a file renamed between its open at the path and the look for skipped backups is read', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const { Tailer, hook } = await hookedTailer(t, path);
  const h = new TailHarness(path, join(dir, 'state'), {}, 64 * 1024, Tailer);
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
  hook.atOpen = () => {
    renameSync(`${path}.2`, `${path}.3`);
    renameSync(`${path}.1`, `${path}.2`);
    renameSync(path, `${path}.1`);
    writeFileSync(path, lines(3 * N)); // D
  };
  await h.waitDelivered(4 * N);
  await h.stop();
  t.equal(hook.atOpen, undefined, 'the third rotation came right after the open');
  const seqs = h.delivered.map((l) => Number(l.split(' ')[0]));
  t.same(seqs, Array.from({ length: 4 * N }, (_, i) => i), 'A, B, C and D: every line once, in order', { runs: runs(seqs), log: h.log.events.map((e) => e.msg) });
});

t.test('after a restart, the live file renamed right after its first open resumes at its checkpoint', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  const { Tailer, hook } = await hookedTailer(t, path);
  writeFileSync(path, lines(0));
  const first = new TailHarness(path, join(dir, 'state'), {}, 64 * 1024, Tailer);
  await first.start();
  await first.waitDelivered(N);
  await first.stop();
  // While stopped the file grows; the writer renames it right after the next run opens it.
  appendFileSync(path, lines(N));
  hook.atOpen = () => {
    renameSync(path, `${path}.1`);
    writeFileSync(path, lines(2 * N));
  };
  const second = new TailHarness(path, join(dir, 'state'), {}, 64 * 1024, Tailer);
  t.teardown(() => second.stop());
  await second.start();
  await second.waitDelivered(2 * N);
  await second.stop();
  t.equal(hook.atOpen, undefined, 'the rename came right after the open');
  const seqs = second.delivered.map((l) => Number(l.split(' ')[0]));
  t.same(seqs, Array.from({ length: 2 * N }, (_, i) => N + i), 'the rest of the file from its checkpoint, then the new one: nothing again, nothing lost', { runs: runs(seqs) });
});

function runs(seqs: number[]): string {
  const out: string[] = [];
  let start = 0;
  for (let i = 1; i <= seqs.length; i++) if (i === seqs.length || seqs[i] !== seqs[i - 1] + 1) (out.push(`${seqs[start]}-${seqs[i - 1]}`), (start = i));
  return out.join(',');
}
