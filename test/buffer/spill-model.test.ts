import t from 'tap';
import fc from 'fast-check';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { check, cmd, run } from '../helpers/spill-model.js';

/**
 * The spill against a model (test/helpers/spill-model.ts): random pushes, takes, hand-ons,
 * requeues, drain down and up, restarts, crashes at any disk operation, flipped bytes, a disk that
 * fills and empties, short writes; each --when-full policy. SPILL_MODEL_RUNS sets the runs per policy
 * (and lifts the time bound: they all run).
 */
const RUNS = Number(process.env.SPILL_MODEL_RUNS ?? 40);
// Bounded in time as well by default: a loaded CI machine runs fewer, never longer.
const TIME_LIMIT = process.env.SPILL_MODEL_RUNS ? {} : { interruptAfterTimeLimit: 17_000, markInterruptAsFailure: false };

for (const whenFull of ['block', 'drop-newest', 'drop-oldest'] as const) {
  t.test(`model: --when-full ${whenFull}`, async (t) => {
    let runs = 0;
    let crashes = 0;
    let lines = 0;
    let full = 0;
    let stuck = 0;
    let gaps = 0;
    // Runs where the order of gap records among the lines is checked (gap records, no crash).
    let placed = 0;
    await fc.assert(
      fc.asyncProperty(fc.array(cmd, { minLength: 10, maxLength: 120, size: 'max' }), async (cmds) => {
        const dir = mkdtempSync(join(tmpdir(), 'auditfwd-spill-model-'));
        try {
          const o = await run(dir, whenFull, cmds);
          runs++;
          if (o.crashed) crashes++;
          lines += o.total;
          if (o.full) full++;
          if (o.stuck) stuck++;
          if (o.gaps.length > 0) gaps++;
          if (o.gaps.length > 0 && !o.again) placed++;
          const problem = check(o, whenFull);
          if (problem) throw new Error(`${problem}; delivered ${o.delivered.join(",")}; gaps ${JSON.stringify(o.gaps)}; of ${o.total}`);
        } finally {
          rmSync(dir, { recursive: true, force: true });
        }
      }),
      { numRuns: RUNS, endOnFailure: true, ...(process.env.FC_SEED ? { seed: Number(process.env.FC_SEED), path: process.env.FC_PATH } : {}), ...TIME_LIMIT },
    );
    const summary = `${runs} runs: ${crashes} with a crash, ${stuck} with the spill unwritable, ${full} with it full, ${gaps} with gap records (${placed} of them checked for where each stands); ${lines} lines`;
    t.comment(summary);
    t.ok(runs >= Math.min(RUNS, 10), summary);
  });
}
