// Tiny fit on a prepared dataset, then held-out PSNR/SSIM of ours (both compositings) beside the plate-only baseline.
// Usage: node bench/fit_quality.mjs <dataset> [steps=300] [size=96] [grid_res=20]   (needs trainer/dist built)
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runFit, resolveFitOptions } from '../trainer/dist/fit/fit.js';
import { checkDataset } from '../trainer/dist/fit/data.js';
import { EvalDataset } from '../trainer/dist/eval/dataset.js';
import { runPlateBaseline, runRendered } from '../trainer/dist/eval/evaluate.js';

const [ds, steps = '300', size = '96', res = '20'] = process.argv.slice(2);
const out = mkdtempSync(join(tmpdir(), 'dyntet-fitq-'));
const options = resolveFitOptions({ steps: Number(steps), batch: 2, size: Number(size), checkpointEvery: 100000, validateEvery: 100000, logEvery: 10,
  model: { grid_res: Number(res), hash_levels: 8, hash_log2_table: 12 } });
const { meta } = checkDataset(ds);
const t0 = Date.now();
const r = runFit({ dataset: ds, out, options, device: 'cpu', resume: false, quiet: true, fullSize: meta.width });
const fitS = (Date.now() - t0) / 1000;
const e = EvalDataset.open(ds);
const plate = runPlateBaseline(e);
const ours = runRendered(e, join(out, 'eval'));
const row = (m) => `| ${m.name} | ${m.mean.psnr?.toFixed?.(2) ?? JSON.stringify(m.mean)} |`;
console.log(`fit: ${r.steps} steps, ${size}px, R=${res}, ${fitS.toFixed(0)} s (${(r.steps / fitS).toFixed(2)} steps/s)`);
console.log('| method | mean quality |\n| --- | --- |');
for (const m of [plate, ours.overReal, ours.overPlate]) console.log(`| ${m.name} | ${JSON.stringify(m.mean)} |`);
rmSync(out, { recursive: true, force: true });
