/** Resolves everything waiting on it when poked; each wait() gets the next poke. */
export class Signal {
  private waiters: Array<() => void> = [];
  wait(): Promise<void> {
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  poke(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}
