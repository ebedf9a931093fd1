// The built bundle ships every shader without its comments (what the WGSL compiler reads, no more;
// the commented files in shaders/ stay the source), and every exported entry point. Needs `npm run build:sdk`.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { stripWgsl } from '../../rollup.config.js';

const root = join(import.meta.dirname, '..', '..');
const bundle = readFileSync(join(root, 'sdk', 'dist', 'index.js'), 'utf8');
const shaders = readdirSync(join(root, 'shaders')).filter((f) => f.endsWith('.wgsl'));

describe('shaders in the bundle', () => {
  it('strips comments and indentation and keeps every code line', () => {
    const src = '// a comment\n  let x = 1; // trailing\n\n    fn f() {}\n';
    expect(stripWgsl(src)).toBe('let x = 1;\nfn f() {}\n');
  });

  it.each(shaders)('%s ships stripped', (file) => {
    const src = readFileSync(join(root, 'shaders', file), 'utf8');
    const comments = src.split('\n').map((l) => /\/\/(.*)$/.exec(l)?.[1].trim()).filter((c): c is string => !!c && c.length > 24);
    expect(bundle.includes(JSON.stringify(stripWgsl(src)).slice(1, -1))).toBe(true);
    for (const c of comments.slice(0, 3)) expect(bundle.includes(c), `comment "${c}" of ${file} is in the bundle`).toBe(false);
  });
});

// Every entry point the package exports must ship its code and its types where the export map says,
// or users of that entry get untyped imports (or none at all).
describe('package exports', () => {
  const pkg = JSON.parse(readFileSync(join(root, 'sdk', 'package.json'), 'utf8')) as { exports: Record<string, { types: string; import: string }> };
  it.each(Object.entries(pkg.exports))('%s has its code and its types', (_entry, target) => {
    expect(existsSync(join(root, 'sdk', target.import)), target.import).toBe(true);
    expect(existsSync(join(root, 'sdk', target.types)), target.types).toBe(true);
  });
});
