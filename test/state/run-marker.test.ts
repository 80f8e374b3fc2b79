import t from 'tap';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { CheckpointStore } from '../../src/state/checkpoints.js';
import { RecordingLog } from '../helpers/tail-harness.js';

/**
 * A run that dies (kill -9, OOM) leaves its marker in the state folder: the next one knows it may be
 * in a crash loop (and writes in committed pieces for its first seconds). A clean stop removes it.
 */
t.test('the state folder says whether the last run stopped cleanly', async (t) => {
  const dir = t.testdir({});
  const log = new RecordingLog();
  const first = await CheckpointStore.open(dir, log.logger);
  t.equal(first.lastRunDied, false, 'a fresh folder: nothing died');
  t.equal(statSync(join(dir, 'running')).mode & 0o777, 0o600, 'the marker is 0600');
  await first.abandon();

  const afterKill = await CheckpointStore.open(dir, log.logger);
  t.equal(afterKill.lastRunDied, true, 'after a kill -9 (the store abandoned, not closed)');
  await afterKill.close();
  t.notOk(existsSync(join(dir, 'running')), 'a clean stop removes the marker');

  const afterStop = await CheckpointStore.open(dir, log.logger);
  t.equal(afterStop.lastRunDied, false, 'after a clean stop');
  await afterStop.close();
});
