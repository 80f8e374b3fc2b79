import t from 'tap';
import { readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

// `npm test` builds first. A non-ASCII character anywhere in a bundle file makes V8 keep that
// file's whole source as a two-byte string for the process's life (scripts/bundle.mjs).
const DIST = fileURLToPath(new URL('../../dist/', import.meta.url));

t.test('the bundle the binary runs is pure ASCII', async (t) => {
  const files = ['auditfwd.js', ...readdirSync(`${DIST}chunks`).filter((n) => n.endsWith('.js')).map((n) => `chunks/${n}`)];
  t.ok(files.length > 1, `${files.length} files`);
  for (const f of files) {
    const text = readFileSync(`${DIST}${f}`, 'latin1');
    const at = text.search(/[^\x00-\x7f]/);
    t.equal(at, -1, `${f}${at >= 0 ? `: ${JSON.stringify(text.slice(Math.max(0, at - 40), at + 10))}` : ''}`);
  }
});
