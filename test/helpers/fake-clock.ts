interface TestLike {
  teardown(fn: () => unknown): void;
}

/** Date.now under the test's control until the test ends: what the code times moves when the test says. */
export function fakeClock(t: TestLike): { advance(ms: number): void } {
  const real = Date.now;
  let now = real();
  Date.now = () => now;
  t.teardown(() => {
    Date.now = real;
  });
  return { advance: (ms) => (now += ms) };
}
