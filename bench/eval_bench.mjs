#!/usr/bin/env node
// Milliseconds per frame of the evaluation metrics and the 2-D baseline on a prepared dataset's
// held-out frames, single-threaded. Build first: npx tsc -p trainer/tsconfig.json.
// Usage: node bench/eval_bench.mjs [dataset dir] (default: tmp/datasets/may_5s, which the eval
// tests prepare from the shared may_5s clip).
import { readFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'trainer', 'dist', p);
const { EvalDataset, pad } = await import(dist('eval/dataset.js'));
const M = await import(dist('eval/metrics.js'));
const B = await import(dist('eval/baseline.js'));
const { decodePng, encodePng } = await import(dist('image/index.js'));

const dir = resolve(process.argv[2] ?? join(root, 'tmp', 'datasets', 'may_5s'));
const ds = EvalDataset.open(dir);
const frames = ds.val;
const cands = ds.train.map((i) => ds.frame(i));
const reals = frames.map((v) => ds.image(v));
const plate = ds.plate();
const masks = frames.map((v) => ds.headMask(v));
const sources = frames.map((v) => ds.train[B.nearestFrame(ds.frame(v), cands)]);
const srcImgs = sources.map((s) => ds.image(s));
const outs = frames.map((v, k) => B.pasteFace(srcImgs[k], ds.landmarksOf(sources[k]), reals[k], ds.landmarksOf(v)));

/** Median over repeats of the mean ms per frame of fn(k) over all held-out frames. */
function time(fn, repeats = 3) {
  const t = [];
  for (let r = 0; r < repeats; r++) {
    const t0 = performance.now();
    for (let k = 0; k < frames.length; k++) fn(k);
    t.push((performance.now() - t0) / frames.length);
  }
  t.sort((a, b) => a - b);
  return t[Math.floor(t.length / 2)];
}

const box = (k) => ds.frame(frames[k]).headBox;
const rows = [
  ['decode frame PNG', () => time((k) => decodePng(readFileSync(join(dir, 'frames', `${pad(frames[k])}.png`))))],
  ['PSNR full frame', () => time((k) => M.psnr(reals[k], outs[k].output))],
  ['PSNR head box', () => time((k) => M.psnr(reals[k], outs[k].output, { box: box(k) }))],
  ['SSIM full frame (rgb)', () => time((k) => M.ssim(reals[k], outs[k].output))],
  ['SSIM full frame (luma)', () => time((k) => M.ssim(reals[k], outs[k].output, { mode: 'luma' }))],
  ['SSIM head box (rgb)', () => time((k) => M.ssim(reals[k], outs[k].output, { box: box(k) }))],
  ['composite (coverage)', () => time((k) => M.composite(srcImgs[k], masks[k], reals[k]))],
  ['LMD (478 landmarks)', () => time((k) => M.lmd(outs[k].alignedLandmarks, ds.landmarksOf(frames[k])), 20)],
  ['nearest frame search', () => time((k) => B.nearestFrame(ds.frame(frames[k]), cands), 20)],
  ['similarity fit', () => time((k) => B.fitSimilarity(ds.landmarksOf(sources[k]), ds.landmarksOf(frames[k])), 20)],
  ['paste face (fit+hull+feather+warp)', () => time((k) => B.pasteFace(srcImgs[k], ds.landmarksOf(sources[k]), reals[k], ds.landmarksOf(frames[k])))],
  ['plate-only baseline', () => time((k) => B.plateOnly(reals[k], plate, masks[k]))],
  ['encode PNG (level 1)', () => time((k) => encodePng(outs[k].output, { level: 1 }))],
];
const load0 = loadavg()[0];
const results = rows.map(([name, fn]) => [name, fn()]);
console.log(`eval metrics and baseline, ms per frame: ${frames.length} held-out ${ds.width}x${ds.height} frames of ${dir.split('/').pop()}, ${cpus()[0].model.trim()}, ${cpus().length} cores, load ${load0.toFixed(1)}/${loadavg()[0].toFixed(1)}`);
console.log('| step | ms/frame |');
console.log('| --- | ---: |');
for (const [name, ms] of results) console.log(`| ${name} | ${ms.toFixed(ms < 1 ? 3 : 1)} |`);
