// helpers.js -- shared by the tests: temporary collections and a small
// deterministic bag-of-words embedding (no model download; similar words
// give similar vectors, which is all retrieval tests need).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const DIM = 32;

export function tempDir(t, name = 'warden-node') {
  const d = mkdtempSync(join(tmpdir(), `${name}-`));
  t.after(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** Hash each lower-cased word into one of DIM buckets (FNV-1a), L2-normalised. */
export function bow(text) {
  const v = new Array(DIM).fill(0);
  for (const w of text.toLowerCase().match(/[a-z0-9]+/g) ?? []) {
    let h = 2166136261;
    for (const ch of w) h = Math.imul(h ^ ch.charCodeAt(0), 16777619) >>> 0;
    v[h % DIM] += 1;
  }
  const n = Math.hypot(...v) || 1;
  if (!v.some((x) => x)) v[0] = 1;
  return v.map((x) => x / n);
}
