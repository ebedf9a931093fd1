#!/usr/bin/env node
// How well an exported avatar reproduces its own training frames against how well it does on
// held-out ones: renders every `--every`-th training frame and every held-out frame with the
// reference renderer (what ships), scores both over the plate and over the real frame, prints a
// table, and writes the mean squared-error maps (sqrt, x4) of both splits side by side as a PNG.
// Build first: npx tsc -p trainer/tsconfig.json.
// Usage: node bench/fit_vs_heldout.mjs <dataset dir> <avatar.dyntet> [--every 5] [--out <dir>]
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const args = process.argv.slice(2);
if (args.includes('-h') || args.includes('--help') || args.length < 2) {
  console.log('Usage: node bench/fit_vs_heldout.mjs <dataset dir> <avatar.dyntet> [--every 5] [--out <dir>]\n' +
    'Scores the avatar on every N-th training frame and on the held-out frames (reference renderer),\n' +
    'prints PSNR/SSIM over the full frame and the head box for both, and writes <out>/error-maps.png.');
  process.exit(args.length < 2 && !args.includes('-h') && !args.includes('--help') ? 2 : 0);
}
const opt = (k, d) => { const i = args.indexOf(k); return i < 0 ? d : args[i + 1]; };
const every = Number(opt('--every', '5'));
const out = resolve(opt('--out', 'bench-out/fit-vs-heldout'));
const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const dist = (p) => join(root, 'trainer', 'dist', p);
const { EvalDataset, pad } = await import(dist('eval/dataset.js'));
const { renderAssetFrames } = await import(dist('eval/asset.js'));
const { runRendered } = await import(dist('eval/evaluate.js'));
const { decodePng, encodePng, createImage } = await import(dist('image/index.js'));

const ds = EvalDataset.open(resolve(args[0]));
const splits = [['training', ds.train.filter((_, i) => i % every === 0)], ['held-out', ds.val]];
const plate = ds.plate();
const maps = [];
console.log('| frames | count | full PSNR over plate | head PSNR over plate | head SSIM over plate | head PSNR over real frame |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, frames] of splits) {
  const dir = join(out, name);
  mkdirSync(dir, { recursive: true });
  await renderAssetFrames(ds, resolve(args[1]), dir, frames);
  const r = runRendered(ds, dir, { frames });
  const p = r.overPlate.mean, q = r.overReal.mean;
  console.log(`| ${name} | ${frames.length} | ${p.full.psnr.toFixed(2)} | ${p.head.psnr.toFixed(2)} | ${p.head.ssim.toFixed(4)} | ${q.head.psnr.toFixed(2)} |`);
  // Mean squared error of the composite over the plate, per pixel.
  const acc = new Float64Array(ds.width * ds.height);
  for (const f of frames) {
    const img = decodePng(readFileSync(join(dir, `${pad(f)}.png`)));
    const real = ds.image(f);
    for (let i = 0; i < acc.length; i++) {
      const a = img.data[4 * i + 3] / 255;
      let e = 0;
      for (let c = 0; c < 3; c++) {
        const v = (img.data[4 * i + c] * a + plate.data[plate.channels * i + c] * (1 - a)) / 255 - real.data[real.channels * i + c] / 255;
        e += v * v;
      }
      acc[i] += e / 3 / frames.length;
    }
  }
  maps.push(acc);
}
const W = ds.width, H = ds.height, sheet = createImage(2 * W, H, 3);
maps.forEach((m, k) => {
  for (let y = 0; y < H; y++)
    for (let x = 0; x < W; x++) {
      const v = Math.min(255, Math.round(Math.sqrt(m[y * W + x]) * 4 * 255));
      for (let c = 0; c < 3; c++) sheet.data[3 * ((y * 2 * W) + k * W + x) + c] = v;
    }
});
writeFileSync(join(out, 'error-maps.png'), encodePng(sheet));
console.log(`error maps (training | held-out): ${join(out, 'error-maps.png')}`);
