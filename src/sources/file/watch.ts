import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * Wakes a tailer when its file may have changed: an fs.watch on the file's folder for low latency
 * (it sees writes, renames and creations), and a poll as the safety net for lost events (inotify
 * overflow, network filesystems, a folder that does not exist yet).
 */
export class Waker {
  private watcher: FSWatcher | undefined;
  private waiting: (() => void) | undefined;
  private signalled = false;
  private readonly name: string;

  constructor(
    private readonly path: string,
    private readonly pollMs: number,
  ) {
    this.name = basename(path);
    this.arm();
  }

  private arm(): void {
    if (this.watcher) return;
    try {
      this.watcher = watch(dirname(this.path), { persistent: false }, (_event, file) => {
        if (file === null || file === this.name || String(file).startsWith(this.name)) this.wake();
      });
      this.watcher.on('error', () => this.disarm());
    } catch {
      this.watcher = undefined; // no folder yet: the poll covers it, and arm() is retried each wait
    }
  }

  private disarm(): void {
    this.watcher?.close();
    this.watcher = undefined;
  }

  wake(): void {
    this.signalled = true;
    const w = this.waiting;
    this.waiting = undefined;
    w?.();
  }

  /** Resolves on the next change event, a wake(), or after the poll interval. */
  wait(): Promise<void> {
    this.arm();
    if (this.signalled) {
      this.signalled = false;
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting = undefined;
        resolve();
      }, this.pollMs);
      this.waiting = () => {
        clearTimeout(timer);
        this.signalled = false;
        resolve();
      };
    });
  }

  close(): void {
    this.disarm();
    this.wake();
  }
}
