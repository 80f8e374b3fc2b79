// Writes docs/flags.md from the settings table (src/config/options.ts); `npm run docs` builds first.
// test/config/options.test.ts fails when the file and the table differ.
import { writeFileSync } from 'node:fs';
import { flagsMarkdown } from '../dist/config/describe.js';

const target = new URL('../docs/flags.md', import.meta.url);
writeFileSync(target, flagsMarkdown());
process.stdout.write(`wrote ${target.pathname}\n`);
