import t from 'tap';
import { renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TailHarness } from '../../helpers/tail-harness.js';

const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `${from + i} ${'x'.repeat(100)}\n`).join('');
const numbers = (h: TailHarness) => h.delivered.map((l) => Number(l.split(' ')[0]));

// On a busy master auditfwd can take seconds to start, and kube-apiserver's lumberjack rotates a
// full audit.log in about one: the file that was live when the process started is a backup by the
// time the tailer looks. Read from the beginning without history, it is read, not taken for history.
t.test('without history: a backup renamed after the process started is read first; one renamed before is history', async (t) => {
  const dir = t.testdir({ state: {} });
  const path = join(dir, 'audit.log');
  writeFileSync(path, lines(0, 5));
  renameSync(path, join(dir, 'audit-2026-11-30T11-59-59.000.log'));
  const startedAtMs = Date.now() + 20; // past the coarse file clock of the rename above
  await new Promise((resolve) => setTimeout(resolve, 40)); // so that the renames below come after it
  writeFileSync(path, lines(5, 15));
  renameSync(path, join(dir, 'audit-2026-11-30T12-00-00.000.log'));
  writeFileSync(path, lines(15, 25));

  const h = new TailHarness(path, join(dir, 'state'), { startedAtMs });
  await h.start();
  await h.waitDelivered(20).finally(() => h.stop());
  t.same(numbers(h), Array.from({ length: 20 }, (_, i) => i + 5), 'the file live at start, then the live one; not the older backup');
});
