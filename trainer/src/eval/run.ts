// `dyntet-train eval`: baselines (and a renderer's frames) on the held-out frames, written as
// eval.json, example frames, a side-by-side video and an HTML report.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { decodePng, encodePng, type Image } from '../image/index.js';
import { reportRunDir } from '../report/html.js';
import { checkFfmpeg, writeSideBySide } from '../report/video.js';
import { EvalDataset, pad } from './dataset.js';
import { checkRendered, runNearestBaseline, runPlateBaseline, runRendered, trackLmd, type MethodResult } from './evaluate.js';
import type { SsimMode } from './metrics.js';
import { describePoseCoverage, poseCoverage, type PoseCoverage } from './pose-coverage.js';

export interface EvalOptions {
  dataset: string;
  out: string;
  rendered?: string;
  faceModel?: string;
  lmd?: boolean;
  video?: boolean;
  featherFraction?: number;
  ssimMode?: SsimMode;
  quiet?: boolean;
  chromium?: string;
  /** How many held-out frames to show in the report (evenly spaced; default 8). */
  reportFrames?: number;
}

export interface EvalRun {
  methods: MethodResult[];
  table: string;
  report: string;
  json: string;
  video?: string;
  /** Held-out head poses against the training frames' range. */
  poseCoverage: PoseCoverage;
  /** A line for the user when held-out frames leave that range (null otherwise). */
  poseNote: string | null;
}

const f = (v: number | undefined, d = 2) => (v === undefined || !Number.isFinite(v) ? '-' : v.toFixed(d));

/** A plain-text table of methods (what the command prints and benchmarks paste). */
export function formatTable(methods: readonly MethodResult[]): string {
  const rows = [['method', 'full PSNR', 'full SSIM', 'head PSNR', 'head SSIM', 'LMD', 'mouth LMD', 'ms/frame']];
  for (const m of methods)
    rows.push([m.name, f(m.mean.full.psnr), f(m.mean.full.ssim, 4), f(m.mean.head.psnr), f(m.mean.head.ssim, 4), f(m.lmd), f(m.lmdMouth), f(m.msPerFrame, 0)]);
  const w = rows[0].map((_, c) => Math.max(...rows.map((r) => r[c].length)));
  return rows.map((r) => r.map((v, c) => (c ? v.padStart(w[c]) : v.padEnd(w[c]))).join('  ')).join('\n');
}

export async function runEval(opts: EvalOptions): Promise<EvalRun> {
  const ds = EvalDataset.open(opts.dataset);
  const wantLmd = opts.lmd ?? true, wantVideo = opts.video ?? true;
  // Fail on missing tools before any work.
  let faceModel: string | undefined;
  if (wantLmd) {
    const { resolveFaceModel } = await import('../prepare/prepare.js');
    faceModel = resolveFaceModel(opts.faceModel);
  }
  if (wantVideo) checkFfmpeg();
  if (opts.rendered) checkRendered(ds, opts.rendered);
  const out = resolve(opts.out);
  const framesDir = (m: string) => join(out, 'frames', m);
  for (const m of ['baseline', 'plate', 'ours']) mkdirSync(framesDir(m), { recursive: true });
  const save = (m: string) => (i: number, img: Image) => writeFileSync(join(framesDir(m), `${pad(i)}.png`), encodePng(img, { level: 1 }));
  const load = (m: string) => (i: number) => decodePng(readFileSync(join(framesDir(m), `${pad(i)}.png`)));
  const log = (s: string) => { if (!opts.quiet) console.error(`eval: ${s}`); };

  log(`nearest-frame baseline on ${ds.val.length} held-out frames`);
  const base = runNearestBaseline(ds, { featherFraction: opts.featherFraction, ssimMode: opts.ssimMode, onFrame: save('baseline') });
  const plate = runPlateBaseline(ds, { ssimMode: opts.ssimMode, onFrame: save('plate') });
  const methods: MethodResult[] = [];
  let ours: string = 'baseline';
  if (opts.rendered) {
    log(`rendered frames from ${opts.rendered}`);
    const r = runRendered(ds, opts.rendered, { ssimMode: opts.ssimMode, onPlateFrame: save('ours') });
    methods.push(r.overReal, r.overPlate);
    ours = 'ours';
  }
  methods.push(base, plate);
  const coverage = poseCoverage(ds.train.map((i) => ds.frame(i).pose), ds.val.map((v) => ({ index: v, pose: ds.frame(v).pose })));
  const poseNote = describePoseCoverage(coverage);
  if (poseNote) log(poseNote);
  if (faceModel) {
    log('tracking real frames and outputs for LMD');
    // The real held-out frames are tracked again exactly as the outputs are (a fresh tracker in
    // video mode from the first held-out frame), so both sides carry the same tracker state; their
    // distance to the dataset's landmarks (tracked over the whole clip) is reported as the floor.
    const perfect = { psnr: Infinity, ssim: 1 };
    const floor: MethodResult = {
      name: 'real frames re-tracked (LMD floor)',
      frames: ds.val.map((v) => ({ index: v, quality: { full: perfect, head: perfect } })),
      mean: { full: { psnr: 100, ssim: 1 }, head: { psnr: 100, ssim: 1 } },
      msPerFrame: 0,
    };
    const { landmarks: reference } = await trackLmd(ds, floor, (v) => ds.image(v), { faceModel, chromium: opts.chromium });
    await trackLmd(ds, base, load('baseline'), { faceModel, chromium: opts.chromium, reference });
    if (opts.rendered) await trackLmd(ds, methods[1], load('ours'), { faceModel, chromium: opts.chromium, reference });
    methods.push(floor);
  }

  // Example frames for the report: evenly spaced over the held-out range.
  const valDir = join(out, 'val');
  mkdirSync(valDir, { recursive: true });
  const k = Math.min(ds.val.length, opts.reportFrames ?? 8);
  for (let j = 0; j < k; j++) {
    const v = ds.val[Math.floor((j * ds.val.length) / k)];
    writeFileSync(join(valDir, `${pad(v)}_real.png`), encodePng(ds.image(v), { level: 3 }));
    writeFileSync(join(valDir, `${pad(v)}_ours.png`), encodePng(load(ours)(v), { level: 3 }));
  }
  const json = join(out, 'eval.json');
  writeFileSync(json, JSON.stringify({
    dataset: resolve(opts.dataset),
    heldOut: ds.val,
    caption: `${ds.val.length} held-out frames; ${ours === 'ours' ? 'example frames show ours over the plate' : 'example frames show the nearest-frame baseline (no --rendered frames given)'}`,
    conventions: {
      psnr: '0-255 scale over R, G, B; per-frame PSNR capped at 100 dB, then averaged',
      ssim: `11x11 Gaussian window, sigma 1.5, valid windows; ${opts.ssimMode ?? 'rgb'}`,
      headBox: 'tracking.json boxes.head of the real frame: landmark bounding box grown by 15% of its larger side',
      lmd: 'mean 2-D distance (px) between MediaPipe landmarks of the output and of the real frame, both tracked afresh in video mode from the first held-out frame; all 478, and 40 lip landmarks. The LMD floor row: real frames tracked that way against the dataset landmarks (tracked over the whole clip)',
      protocols: 'over real frame: rendered head composited into the ground-truth frame by its coverage (the paper); over plate: composited over the dataset background plate (what a viewer sees)',
      poseCoverage: 'head yaw / pitch / roll (degrees) of each held-out frame from its stored pose, and how far it lies beyond the range of the training frames (worst axis)',
    },
    methods,
    poseCoverage: coverage,
  }, null, 1));
  let video: string | undefined;
  if (wantVideo) {
    video = join(out, 'side_by_side.mp4');
    log(`side-by-side video ${video}`);
    const src = load(ours);
    await writeSideBySide(video, (function* () { for (const v of ds.val) yield { real: ds.image(v), ours: src(v) }; })(), { fps: ds.fps });
  }
  const report = reportRunDir(out, { title: `DynTet evaluation: ${ds.dir}` });
  return { methods, table: formatTable(methods), report, json, video, poseCoverage: coverage, poseNote };
}
