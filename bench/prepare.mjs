#!/usr/bin/env node
// Milliseconds per frame of each `prepare` stage on the shared clips (fresh runs, no cache).
// Build first: npx tsc -p trainer/tsconfig.json. Usage: node bench/prepare.mjs [clip names...]
// Options via env: MATTE_EVERY (default 3), DYNTET_SHARED (the shared folder).
import { mkdtempSync, rmSync } from 'node:fs';
import { loadavg, tmpdir, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const shared = process.env.DYNTET_SHARED ?? join(root, '..', 'shared');
const { prepare } = await import(join(root, 'trainer', 'dist', 'prepare', 'prepare.js'));
const clips = process.argv.slice(2).length ? process.argv.slice(2) : ['may_5s', 'katie_8s'];
const matteEvery = Number(process.env.MATTE_EVERY ?? 3);

const rows = [];
for (const name of clips) {
  const out = mkdtempSync(join(tmpdir(), 'dyntet-bench-prepare-'));
  const load0 = loadavg()[0];
  const t = performance.now();
  const r = await prepare({ video: join(shared, 'data', 'clips', `${name}.mp4`), out, faceModel: join(shared, 'data', 'models', 'face_landmarker.task'), quiet: true, matteEvery });
  const wall = performance.now() - t;
  rmSync(out, { recursive: true, force: true });
  rows.push({ clip: name, frames: r.frames, ...r.msPerFrame, wall_s: +(wall / 1000).toFixed(1), load: `${load0.toFixed(1)}/${loadavg()[0].toFixed(1)}` });
}
const cols = Object.keys(rows[0]);
console.log(`prepare, ms per frame (matte every ${matteEvery} frames, ${cpus().length} cores; load = 1-min load average before/after)`);
console.log(`| ${cols.join(' | ')} |`);
console.log(`|${cols.map(() => ' --- ').join('|')}|`);
for (const r of rows) console.log(`| ${cols.map((c) => r[c]).join(' | ')} |`);
