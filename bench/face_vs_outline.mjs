#!/usr/bin/env node
// Where does an avatar lose to the nearest-frame 2-D baseline on held-out frames: inside the face
// or at the outline and hair? The baseline replaces only the feathered landmark hull of the real
// frame, so everything outside it is the real frame. This scores, per held-out frame and on
// average: the baseline; our render over the real frame (the whole head, as `eval` does); and our
// render pasted through the baseline's own feathered hull (same region, our content). PSNR over the
// head box and over the hull's core (alpha > 0.5).
// Build first: npx tsc -p trainer/tsconfig.json.
// Usage: node bench/face_vs_outline.mjs <dataset dir> <avatar.dyntet | run's eval/ folder> [--out <dir>]
// (a folder: the held-out renders `fit` writes to <run>/eval, RGBA at the dataset's size).
import { mkdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
if (args.includes('-h') || args.includes('--help') || args.length < 2) {
  console.log('Usage: node bench/face_vs_outline.mjs <dataset dir> <avatar.dyntet | run\'s eval/ folder> [--out <dir>]\n' +
    'Held-out PSNR of the nearest-frame baseline, of the avatar over the real frame, and of the avatar\n' +
    'pasted through the baseline\'s feathered landmark hull, over the head box and inside the hull.');
  process.exit(args.length < 2 && !args.includes('-h') && !args.includes('--help') ? 2 : 0);
}
const opt = (k, d) => { const i = args.indexOf(k); return i < 0 ? d : args[i + 1]; };
const out = resolve(opt('--out', 'bench-out/face-vs-outline'));
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'trainer', 'dist', p);
const { EvalDataset, pad } = await import(dist('eval/dataset.js'));
const { renderAssetFrames } = await import(dist('eval/asset.js'));
const { nearestFrame, pasteFace } = await import(dist('eval/baseline.js'));
const { composite, psnrFromMse, pixelRect } = await import(dist('eval/metrics.js'));
const { decodePng, createImage } = await import(dist('image/index.js'));

const ds = EvalDataset.open(resolve(args[0]));
// An asset is rendered with the reference renderer (what ships); a folder holds renders already.
let renders = resolve(args[1]);
if (!statSync(renders).isDirectory()) {
  mkdirSync(out, { recursive: true });
  await renderAssetFrames(ds, renders, out, ds.val);
  renders = out;
}
const cands = ds.train.map((i) => ds.frame(i));

// Mean squared error (0-255 scale, RGB) over the pixels where keep(i) holds inside rect.
function mseWhere(a, b, rect, keep) {
  let se = 0, n = 0;
  for (let y = rect.y0; y < rect.y1; y++)
    for (let x = rect.x0; x < rect.x1; x++) {
      const i = y * a.width + x;
      if (!keep(i)) continue;
      for (let c = 0; c < 3; c++) { const d = a.data[a.channels * i + c] - b.data[b.channels * i + c]; se += d * d; }
      n += 3;
    }
  return n ? se / n : NaN;
}

const rows = [];
for (const v of ds.val) {
  const real = ds.image(v), r = pixelRect(ds.frame(v).headBox, ds.width, ds.height);
  const box = { x0: r.x, y0: r.y, x1: r.x + r.w, y1: r.y + r.h };
  const src = ds.train[nearestFrame(ds.frame(v), cands)];
  const base = pasteFace(ds.image(src), ds.landmarksOf(src), real, ds.landmarksOf(v));
  const img = decodePng(readFileSync(join(renders, `${pad(v)}.png`)));
  const cov = createImage(img.width, img.height, 1);
  for (let i = 0; i < cov.data.length; i++) cov.data[i] = img.data[4 * i + 3];
  const ours = composite(img, cov, real);
  const hullPaste = createImage(real.width, real.height, real.channels);
  for (let i = 0; i < real.width * real.height; i++) {
    const t = base.alpha[i];
    for (let c = 0; c < real.channels; c++)
      hullPaste.data[real.channels * i + c] = Math.round(t * ours.data[ours.channels * i + c] + (1 - t) * real.data[real.channels * i + c]);
  }
  const all = () => true, core = (i) => base.alpha[i] > 0.5;
  const full = { x0: 0, y0: 0, x1: real.width, y1: real.height };
  // The head box split four ways: the face (hull core), the rest of the head mask (hair, ears,
  // neck) where we draw and where we do not, and the background; each part's share of the box's
  // squared error.
  const mask = ds.headMask(v), inHead = (i) => mask.data[i] > 127;
  const covered = (i) => cov.data[i] > 127;
  const parts = { face: core, hair: (i) => !core(i) && inHead(i) && covered(i), uncovered: (i) => !core(i) && inHead(i) && !covered(i),
    background: (i) => !core(i) && !inHead(i) };
  const share = {};
  let boxSe = 0;
  for (const [k, f] of Object.entries(parts)) {
    let n = 0;
    for (let y = box.y0; y < box.y1; y++) for (let x = box.x0; x < box.x1; x++) if (f(y * real.width + x)) n++;
    share[k] = n ? mseWhere(ours, real, box, f) * n : 0;
    share[k + 'Px'] = n;
    boxSe += share[k];
  }
  for (const k of Object.keys(parts)) share[k] /= boxSe;
  rows.push({ ...share,
    frame: v,
    baseBox: psnrFromMse(mseWhere(base.output, real, box, all)), baseHull: psnrFromMse(mseWhere(base.output, real, full, core)),
    oursBox: psnrFromMse(mseWhere(ours, real, box, all)), oursHull: psnrFromMse(mseWhere(ours, real, full, core)),
    pasteBox: psnrFromMse(mseWhere(hullPaste, real, box, all)),
  });
}
const mean = (k) => rows.reduce((s, r) => s + r[k], 0) / rows.length;
console.log(`held-out frames of ${args[0]}: ${rows.length}; PSNR (dB), mean over frames\n`);
console.log('| method | head box | inside the hull |');
console.log('| --- | ---: | ---: |');
console.log(`| nearest-frame 2-D baseline | ${mean('baseBox').toFixed(2)} | ${mean('baseHull').toFixed(2)} |`);
console.log(`| ours over the real frame (whole head) | ${mean('oursBox').toFixed(2)} | ${mean('oursHull').toFixed(2)} |`);
console.log(`| ours pasted through the baseline's hull | ${mean('pasteBox').toFixed(2)} | ${mean('oursHull').toFixed(2)} |`);
console.log('\nOur head-box squared error by region (share of the error, share of the pixels):\n');
console.log('| region | error | pixels |');
console.log('| --- | ---: | ---: |');
const px = (k) => rows.reduce((s, r) => s + r[k + 'Px'] / (r.facePx + r.hairPx + r.uncoveredPx + r.backgroundPx), 0) / rows.length;
for (const [k, label] of [['face', 'face (hull core)'], ['hair', 'rest of the head mask (hair, ears, neck), drawn'], ['uncovered', 'rest of the head mask, not drawn (plate shows)'], ['background', 'background (outside the head mask)']])
  console.log(`| ${label} | ${(100 * mean(k)).toFixed(1)}% | ${(100 * px(k)).toFixed(1)}% |`);
