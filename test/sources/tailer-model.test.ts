import t from 'tap';
import fc from 'fast-check';
import { appendFileSync, copyFileSync, mkdirSync, renameSync, statSync, truncateSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { TailHarness, type LogEvent } from '../helpers/tail-harness.js';

/**
 * Model-based: random appends (whole and partial lines), rotations of every style (kube-apiserver's
 * timestamped rename, logrotate's numbered rename, copytruncate, delete + recreate) and graceful
 * restarts with rotations while stopped, against a model of what was written. The delivered sequence
 * must be exactly the model's lines: nothing lost, nothing repeated, in order. Only the unterminated
 * last fragment of a rotated file may come later (it is handed on once its writer has gone quiet).
 */

type Style = 'lumberjack' | 'numbered' | 'copytruncate' | 'delete';
type Action =
  | { t: 'append'; k: number; len: number }
  | { t: 'partial'; cut: number }
  | { t: 'yield'; ms: number }
  | { t: 'settle' }
  | { t: 'rotate'; style: Style }
  | { t: 'restart'; during: Array<{ t: 'append'; k: number; len: number } | { t: 'rotate'; style: Exclude<Style, 'delete'> }> }
  | { t: 'pause'; ms: number; before: Array<{ t: 'append'; k: number; len: number }>; rotate: Exclude<Style, 'copytruncate'> | undefined; after: Array<{ t: 'append'; k: number; len: number }> };

const style = fc.constantFrom<Style>('lumberjack', 'numbered', 'copytruncate', 'delete');
const append = fc.record({ t: fc.constant('append' as const), k: fc.integer({ min: 1, max: 40 }), len: fc.integer({ min: 0, max: 120 }) });
const action: fc.Arbitrary<Action> = fc.oneof(
  { weight: 5, arbitrary: append },
  { weight: 1, arbitrary: fc.record({ t: fc.constant('partial' as const), cut: fc.integer({ min: 1, max: 6 }) }) },
  { weight: 2, arbitrary: fc.record({ t: fc.constant('yield' as const), ms: fc.integer({ min: 0, max: 15 }) }) },
  { weight: 1, arbitrary: fc.constant({ t: 'settle' as const }) },
  { weight: 3, arbitrary: fc.record({ t: fc.constant('rotate' as const), style }) },
  {
    // The drain stops reading for a while (longer than --rotate-wait): the tailer blocks on a full
    // buffer while the writer goes on and rotates; the rotated file's rest waits behind the blocked lines.
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('pause' as const),
      ms: fc.integer({ min: 0, max: 120 }),
      // At most one rotation while paused (a copytruncate waits for a line to be delivered first).
      before: fc.array(append, { maxLength: 3 }),
      rotate: fc.option(fc.constantFrom('lumberjack' as const, 'numbered' as const, 'delete' as const), { nil: undefined }),
      after: fc.array(append, { maxLength: 3 }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      t: fc.constant('restart' as const),
      during: fc.array(fc.oneof(append, fc.record({ t: fc.constant('rotate' as const), style: fc.constantFrom('lumberjack' as const, 'numbered' as const, 'copytruncate' as const) })), { maxLength: 4 }),
    }),
  },
);

const WAIT_MS = 4000;

function within<T>(p: Promise<T>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out after ${WAIT_MS} ms waiting for ${what}`)), WAIT_MS);
    p.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });
}

class World {
  /** Contents of files that were rotated away (or deleted while open), oldest first. */
  finished: string[] = [];
  live = '';
  next = 0;
  /** The rest of a line whose beginning is written. */
  rest: string | null = null;
  seq = 0;
  /** Resolves once the tailer has seen the last rotation (one rotation at a time, as in real life). */
  observed: Promise<void> = Promise.resolve();
  liveReadFrom = -1;

  constructor(
    readonly dir: string,
    readonly path: string,
    readonly h: TailHarness,
  ) {}

  line(len: number): string {
    return `${String(this.next++).padStart(7, '0')} ${'x'.repeat(len)}`;
  }

  write(s: string): void {
    appendFileSync(this.path, s);
    this.live += s;
  }

  append(k: number, len: number): void {
    let s = '';
    if (this.rest !== null) s += this.rest + '\n';
    this.rest = null;
    for (let i = 0; i < k; i++) s += this.line(len + (i % 7)) + '\n';
    this.write(s);
  }

  partial(cut: number): void {
    if (this.rest !== null) return;
    const l = this.line(10);
    this.write(l.slice(0, cut));
    this.rest = l.slice(cut);
  }

  /** Lines expected so far: rotated files' lines (and their unterminated fragments), the live file's complete lines. */
  expected(): { lines: string[]; fragments: string[] } {
    const lines: string[] = [];
    const fragments: string[] = [];
    for (const f of this.finished) {
      const parts = f.split('\n');
      const last = parts.pop()!;
      lines.push(...parts);
      if (last !== '') {
        lines.push(last);
        fragments.push(last);
      }
    }
    const parts = this.live.split('\n');
    parts.pop();
    lines.push(...parts);
    return { lines, fragments };
  }

  async rotate(s: Style, running: boolean, waitForPrevious = running): Promise<void> {
    if (waitForPrevious) await within(this.observed, 'the tailer to see the previous rotation');
    const completeLines = this.live.split('\n').length - 1;
    if (s === 'copytruncate' && running) {
      // The tailer must have read from this file once, or it has no content of it to recognise the
      // truncation by (a file opened empty and copytruncated unread is a known limit).
      if (completeLines === 0) return;
      const firstLine = this.live.slice(0, this.live.indexOf('\n'));
      await within(this.deliveredLine(firstLine), `line ${firstLine.slice(0, 7)} before copytruncate`);
    }
    const seq = ++this.seq;
    const mark = this.h.log.events.length;
    if (s === 'lumberjack') renameSync(this.path, join(this.dir, `audit-2026-11-22T10-00-${String(seq % 60).padStart(2, '0')}.${String(seq).padStart(3, '0')}.log`));
    else if (s === 'numbered') renameSync(this.path, `${this.path}.${seq}`);
    else if (s === 'copytruncate') {
      copyFileSync(this.path, `${this.path}.${seq}`);
      truncateSync(this.path, 0);
    } else unlinkSync(this.path);
    if (s !== 'copytruncate') writeFileSync(this.path, '');
    this.finished.push(this.live);
    this.live = '';
    this.rest = null;
    if (!running) return;
    const ino = statSync(this.path).ino;
    this.observed =
      s === 'copytruncate'
        ? this.h.log.waitFor(mark, (e: LogEvent) => /truncated/.test(e.msg))
        : this.h.log.waitFor(mark, (e: LogEvent) => e.msg === 'following file' && e.obj.ino === ino);
  }

  private async deliveredLine(line: string): Promise<void> {
    while (!this.h.delivered.includes(line)) await this.h.waitDelivered(this.h.delivered.length + 1);
  }

  async restart(during: Extract<Action, { t: 'restart' }>['during']): Promise<void> {
    await within(this.observed, 'the tailer to see the previous rotation');
    await this.h.stop();
    for (const a of during) {
      if (a.t === 'append') this.append(a.k, a.len);
      else {
        // Time passes around rotations while stopped: rotated files are ordered by their times,
        // which the kernel keeps at a clock tick's resolution (up to 10 ms).
        await new Promise((r) => setTimeout(r, 15));
        await this.rotate(a.style, false);
        await new Promise((r) => setTimeout(r, 15));
      }
    }
    const mark = this.h.log.events.length;
    await this.h.start();
    this.observed = this.h.log.waitFor(mark, (e: LogEvent) => e.msg === 'following file');
  }
}

t.test('model: appends, rotations of every style and restarts; nothing lost, nothing repeated', async (t) => {
  let runNo = 0;
  const totals = { runs: 0, lines: 0, rotations: 0, restarts: 0, pauses: 0 };
  await fc.assert(
    fc.asyncProperty(fc.array(action, { minLength: 3, maxLength: 18 }), fc.integer({ min: 0, max: 3 }), async (actions, initialLines) => {
      const t0 = Date.now();
      const root = t.testdir({});
      const run = join(root, `run${runNo++}`);
      const dir = join(run, 'kube-apiserver');
      const stateDir = join(run, 'state');
      mkdirSync(dir, { recursive: true });
      const path = join(dir, 'audit.log');
      // A small buffer: a paused drain blocks the tailer after a few lines.
      const h = new TailHarness(path, stateDir, {}, 2048);
      const w = new World(dir, path, h);
      writeFileSync(path, '');
      w.append(initialLines, 20);
      let mark = h.log.events.length;
      try {
        await h.start();
        w.observed = h.log.waitFor(mark, (e) => e.msg === 'following file');
        for (const a of actions) {
          if (a.t === 'append') w.append(a.k, a.len);
          else if (a.t === 'partial') w.partial(a.cut);
          else if (a.t === 'yield') await new Promise((r) => setTimeout(r, a.ms));
          else if (a.t === 'settle') await h.waitDelivered(w.expected().lines.length, WAIT_MS);
          else if (a.t === 'rotate') await w.rotate(a.style, true);
          else if (a.t === 'pause') {
            // The rotation before the pause is seen first: a paused drain holds the tailer back from it.
            if (a.rotate) await within(w.observed, 'the tailer to see the previous rotation');
            h.pause();
            for (const d of a.before) w.append(d.k, d.len);
            if (a.rotate) await w.rotate(a.rotate, true, false);
            for (const d of a.after) w.append(d.k, d.len);
            await new Promise((r) => setTimeout(r, a.ms)); // time passes with the drain away: the scenario, not a wait for an event
            h.resume();
            totals.pauses++;
          } else {
            await w.restart(a.during);
            totals.restarts++;
          }
          if (a.t === 'rotate') totals.rotations++;
        }
        await within(w.observed, 'the tailer to see the last rotation');
        w.append(1, 5);
        const { lines, fragments } = w.expected();
        await h.waitDelivered(lines.length, WAIT_MS).catch(() => {});
        mark = h.log.events.length;
        await h.stop();
        const got = h.delivered;
        // A fragment is handed on when its writer has gone quiet, so only its count is checked, not its place.
        const isFragment = (l: string) => fragments.includes(l);
        const strip = (xs: string[]) => xs.filter((l) => !isFragment(l));
        const ok =
          JSON.stringify(strip(got)) === JSON.stringify(strip(lines)) &&
          JSON.stringify(got.filter(isFragment).sort()) === JSON.stringify([...fragments].sort());
        if (!ok) {
          const seen = new Map<string, number>();
          for (const l of got) seen.set(l, (seen.get(l) ?? 0) + 1);
          const lost = lines.filter((l) => !seen.has(l));
          const repeated = [...seen].filter(([, n]) => n > 1).map(([l]) => l);
          const log = h.log.events.map((e) => `${e.msg} ${JSON.stringify(e.obj).replaceAll(dir + '/', '')}`).join('\n');
          const a = strip(got);
          const b = strip(lines);
          let i = 0;
          while (i < a.length && a[i] === b[i]) i++;
          const near = (xs: string[]) => JSON.stringify(xs.slice(Math.max(0, i - 2), i + 3).map((l) => l.slice(0, 9)));
          throw new Error(`delivered ${got.length}, expected ${lines.length}; lost ${lost.length} ${JSON.stringify(lost.slice(0, 5).map((l) => l.slice(0, 7)))}; repeated ${repeated.length} ${JSON.stringify(repeated.slice(0, 5).map((l) => l.slice(0, 7)))}; first difference at ${i}: got ${near(a)} expected ${near(b)}; fragments ${JSON.stringify([...fragments])}\n${log}`);
        }
        if (process.env.MODEL_DEBUG) console.error(`run ${runNo} ${Date.now() - t0} ms ${JSON.stringify(actions.map((a) => a.t))}`);
        totals.runs++;
        totals.lines += lines.length;
      } finally {
        await h.stop();
      }
    }),
    { numRuns: Number(process.env.MODEL_RUNS ?? 100), seed: process.env.MODEL_SEED ? Number(process.env.MODEL_SEED) : undefined },
  );
  t.comment(`model runs: ${totals.runs}, lines checked: ${totals.lines}, rotations: ${totals.rotations}, restarts: ${totals.restarts}, pauses of the drain: ${totals.pauses}`);
  t.pass('every run delivered exactly the model');
});
