// readme.test.js -- the README's Node.js example runs as written (copied
// out of README.md into a module of this package, which imports itself by
// name) and prints what its comments say.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, rmSync, readdirSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));

test('the README example runs as written', () => {
  const readme = readFileSync(join(here, '../../../README.md'), 'utf8');
  const m = /<!-- node-example -->\n```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README.md has the <!-- node-example --> block');
  const code = m[1];
  assert.ok(code.trim().split('\n').length <= 15, 'at most 15 lines');
  const file = join(here, `.readme-example-${process.pid}.mjs`);
  writeFileSync(file, code);
  const kb = () => new Set(readdirSync('/tmp').filter((n) => n.startsWith('kb-')));
  const before = kb();
  try {
    const out = execFileSync(process.execPath, [file], { encoding: 'utf8' });
    assert.equal(out, "[ 'pay', 'faq' ]\n[ 'faq' ]\n2 2 [ 'faq' ]\n");
  } finally {
    rmSync(file, { force: true });
    for (const n of kb()) if (!before.has(n)) rmSync(join('/tmp', n), { recursive: true, force: true });
  }
});
