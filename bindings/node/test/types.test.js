// types.test.js -- the TypeScript declarations (lib/*.d.ts) type-check
// with tsc --strict against test/types/usage.ts, which uses them as an
// application would (and expects one misuse to be a type error).  With
// skipLibCheck, to stay fast; `npm run typecheck:full` also checks the
// .d.ts files themselves against the frameworks' types (~1 min).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');

test('the TypeScript declarations type-check', () => {
  const r = spawnSync(process.execPath, [join(root, 'node_modules/typescript/bin/tsc'), '-p', 'test/types'],
    { cwd: root, encoding: 'utf8' });
  // errors inside the frameworks' own published .d.ts files are theirs
  const ours = (r.stdout + r.stderr).split('\n').filter((l) => /^(lib|test)\//.test(l));
  assert.deepEqual(ours, []);
});
