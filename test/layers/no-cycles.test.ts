import t from 'tap';
import { fileURLToPath } from 'node:url';
import { cycles, importGraph } from '../helpers/import-graph.js';

// Imports point down: a module never needs, at load time, one that needs it back. A cycle makes the
// load order decide which side sees the other half-initialised, and ties layers that should stand alone.
const SRC = fileURLToPath(new URL('../../src', import.meta.url));

t.test('no import cycle in src/', async (t) => {
  const graph = importGraph(SRC);
  t.ok(graph.size > 50, `the scan found the source files (${graph.size})`);
  t.ok((graph.get('pipeline.ts') ?? []).includes('buffer/memory.ts'), 'the scan reads import statements');
  t.same(cycles(graph), [], 'cycles (each a set of modules that import each other)');
});

t.test('the scan sees a cycle, and leaves type-only imports out', async (t) => {
  const dir = t.testdir({
    'a.ts': "import { b } from './b.js';\nexport const a = 1;\n",
    'b.ts': "import {\n  a,\n} from './a.js';\nimport type { C } from './c.js';\nexport const b = a;\n",
    'c.ts': "export type C = number;\nexport { b } from './b.js';\n",
    'd.ts': "const lazy = () => import('./d.js');\n",
  });
  const graph = importGraph(dir);
  t.same(graph.get('b.ts'), ['a.ts']);
  t.same(graph.get('c.ts'), ['b.ts']);
  t.same(cycles(graph), [['a.ts', 'b.ts'], ['d.ts']]);
});
