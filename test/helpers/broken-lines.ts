import fc from 'fast-check';

/** Breaks a line the ways a line can be broken: cut short, a byte changed, inserted or removed. */
export const broken = (line: string) =>
  fc.tuple(fc.nat(line.length), fc.constantFrom(0x22, 0x5c, 0x7b, 0x7d, 0x5b, 0x5d, 0x2c, 0x3a, 0x20, 0x09, 0x00, 0x1f, 0x7f, 0x80, 0xc3, 0xff, 0x30, 0x2d, 0x2e, 0x65, 0x75, 0x6e, 0x74), fc.integer({ min: 0, max: 3 })).map(([at, byte, how]) => {
    const b = Buffer.from(line);
    if (how === 0) return b.subarray(0, at);
    if (how === 1) return Buffer.concat([b.subarray(0, at), Buffer.from([byte]), b.subarray(at)]);
    if (how === 2) return Buffer.concat([b.subarray(0, at), b.subarray(at + 1)]);
    const c = Buffer.from(b);
    if (at < c.length) c[at] = byte;
    return c;
  });
