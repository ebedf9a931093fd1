// Evaluation of the baselines (and, through the same path, any renderer's output) on the held-out
// frames of a prepared dataset.
//
// Head box: the dataset's per-frame `boxes.head` of the real frame (the bounding box of all 478
// landmarks grown by 15% of its larger side, clipped to the frame). It holds the face, forehead
// and chin; hair and neck mostly fall outside.
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createImage, decodePng, encodePng, type Image } from '../image/index.js';
import { nearestFrame, pasteFace, plateOnly } from './baseline.js';
import { EvalDataset, NUM_LANDMARKS, pad } from './dataset.js';
import { EvalError } from './errors.js';
import { composite, frameQuality, lmd, meanQuality, type FrameQuality, type SsimMode } from './metrics.js';

/** Mouth landmarks (outer and inner lip contours of MediaPipe's face mesh) for the mouth LMD. */
export const MOUTH_LANDMARKS = [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185,
  78, 95, 88, 178, 87, 14, 317, 402, 318, 324, 308, 415, 310, 311, 312, 13, 82, 81, 80, 191] as const;

export interface FrameResult {
  index: number;
  quality: FrameQuality;
  /** For the nearest-frame baseline: the training frame used. */
  source?: number;
  /** LMD of the output's landmarks (tracked by MediaPipe) against the real frame's, px; all / mouth. */
  lmd?: number;
  lmdMouth?: number;
  /** LMD of the aligned source landmarks (no tracking) against the real frame's, px. */
  lmdAligned?: number;
}

export interface MethodResult {
  name: string;
  frames: FrameResult[];
  mean: FrameQuality;
  lmd?: number;
  lmdMouth?: number;
  lmdAligned?: number;
  msPerFrame: number;
}

export interface BaselineOptions {
  /** Which frames to evaluate (default: the dataset's held-out split). */
  frames?: number[];
  featherFraction?: number;
  ssimMode?: SsimMode;
  /** Called with each output frame (e.g. to write a video or keep images for LMD tracking). */
  onFrame?: (index: number, output: Image) => void;
}

function heldOut(ds: EvalDataset, frames?: number[]): number[] {
  const idx = frames ?? ds.val;
  if (!idx.length)
    throw new EvalError(`${ds.dir} has no held-out frames: prepare the dataset with --val 0.2 (the default) so the last frames are kept for evaluation`, 'NO_HELD_OUT');
  return idx;
}

const mean = (v: number[]) => v.reduce((a, b) => a + b, 0) / v.length;

/** The nearest-frame 2-D baseline on the held-out frames. */
export function runNearestBaseline(ds: EvalDataset, opts: BaselineOptions = {}): MethodResult {
  const idx = heldOut(ds, opts.frames);
  const cands = ds.train.map((i) => ds.frame(i));
  const out: FrameResult[] = [];
  const t0 = performance.now();
  for (const v of idx) {
    const f = ds.frame(v);
    const src = ds.train[nearestFrame(f, cands)];
    const real = ds.image(v);
    const r = pasteFace(ds.image(src), ds.landmarksOf(src), real, ds.landmarksOf(v), { featherFraction: opts.featherFraction });
    out.push({
      index: v, source: src,
      quality: frameQuality(real, r.output, f.headBox, opts.ssimMode),
      lmdAligned: lmd(r.alignedLandmarks, ds.landmarksOf(v)),
    });
    opts.onFrame?.(v, r.output);
  }
  const ms = (performance.now() - t0) / idx.length;
  return { name: 'nearest-frame 2-D baseline', frames: out, mean: meanQuality(out.map((r) => r.quality)), lmdAligned: mean(out.map((r) => r.lmdAligned!)), msPerFrame: ms };
}

/** The plate-only baseline (no head): the plate inside the real head mask. */
export function runPlateBaseline(ds: EvalDataset, opts: BaselineOptions = {}): MethodResult {
  const idx = heldOut(ds, opts.frames);
  const plate = ds.plate();
  const out: FrameResult[] = [];
  const t0 = performance.now();
  for (const v of idx) {
    const real = ds.image(v);
    const o = plateOnly(real, plate, ds.headMask(v));
    out.push({ index: v, quality: frameQuality(real, o, ds.frame(v).headBox, opts.ssimMode) });
    opts.onFrame?.(v, o);
  }
  const ms = (performance.now() - t0) / idx.length;
  return { name: 'plate only (no head)', frames: out, mean: meanQuality(out.map((r) => r.quality)), msPerFrame: ms };
}

export interface TrackOptions {
  faceModel: string;
  chromium?: string;
  /**
   * Landmarks to compare with, per frame index (e.g. the real frames tracked the same way, so
   * both sides carry the same tracker state); default: the dataset's landmarks.
   */
  reference?: Map<number, Float32Array>;
}

/**
 * Tracks output frames with the same MediaPipe tracker as `prepare` (in video mode, in order) and
 * fills in each frame's LMD against the real frame's landmarks from the dataset. Frames where no
 * face is found count as failures: they are listed, and left out of the mean.
 */
export async function trackLmd(ds: EvalDataset, result: MethodResult, outputs: Map<number, Image> | ((index: number) => Image), opts: TrackOptions): Promise<{ missed: number[]; landmarks: Map<number, Float32Array> }> {
  const { Tracker } = await import('../prepare/tracker.js');
  const dir = mkdtempSync(join(tmpdir(), 'dyntet-lmd-'));
  const missed: number[] = [];
  const tracked = new Map<number, Float32Array>();
  const ref = (v: number) => opts.reference?.get(v) ?? ds.landmarksOf(v);
  try {
    const order = result.frames.map((f) => f.index);
    mkdirSync(dir, { recursive: true });
    order.forEach((v, k) => {
      const img = typeof outputs === 'function' ? outputs(v) : outputs.get(v);
      if (!img) throw new EvalError(`no output image kept for frame ${v}`, 'BAD_INPUT');
      writeFileSync(join(dir, `${pad(k)}.png`), encodePng(img, { level: 1 }));
    });
    let tracker;
    try {
      // matteEvery beyond the frame count: the person matte is not needed here.
      tracker = await Tracker.start({ framesDir: dir, modelPath: opts.faceModel, width: ds.width, height: ds.height, fps: ds.fps, numFaces: 1, matteEvery: 1 << 30, chromium: opts.chromium });
    } catch (e) {
      throw new EvalError(`LMD needs the face tracker: ${(e as Error).message}`, 'TRACKER');
    }
    try {
      const raw = await tracker.track(0, order.length);
      raw.forEach((r, k) => {
        const fr = result.frames[k];
        const face = r.faces[0];
        if (!face || face.landmarks.length !== NUM_LANDMARKS * 3) {
          missed.push(fr.index);
          return;
        }
        const px = new Float32Array(NUM_LANDMARKS * 3);
        for (let i = 0; i < NUM_LANDMARKS; i++) {
          px[3 * i] = face.landmarks[3 * i] * ds.width;
          px[3 * i + 1] = face.landmarks[3 * i + 1] * ds.height;
          px[3 * i + 2] = face.landmarks[3 * i + 2] * ds.width;
        }
        tracked.set(fr.index, px);
        if (opts.reference && !opts.reference.has(fr.index)) return;
        fr.lmd = lmd(px, ref(fr.index));
        fr.lmdMouth = lmd(px, ref(fr.index), MOUTH_LANDMARKS);
      });
    } finally {
      await tracker.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const got = result.frames.filter((f) => f.lmd !== undefined);
  if (got.length) {
    result.lmd = mean(got.map((f) => f.lmd!));
    result.lmdMouth = mean(got.map((f) => f.lmdMouth!));
  }
  return { missed, landmarks: tracked };
}

/**
 * A renderer's output for the held-out frames, read from `<dir>/<frame %06d>.png` as RGBA: the
 * colour where the model covers the frame and its coverage in alpha. Scored with both protocols:
 * composited over the real frame (the paper's) and over the dataset's plate (what a viewer sees).
 */
export function runRendered(ds: EvalDataset, dir: string, opts: BaselineOptions & { name?: string; onPlateFrame?: (index: number, output: Image) => void } = {}): { overReal: MethodResult; overPlate: MethodResult } {
  const idx = heldOut(ds, opts.frames);
  checkRendered(ds, dir, idx);
  const plate = ds.plate();
  const real: FrameResult[] = [], plated: FrameResult[] = [];
  const t0 = performance.now();
  for (const v of idx) {
    const img = readRendered(ds, join(dir, `${pad(v)}.png`));
    const cov = createImage(img.width, img.height, 1);
    for (let i = 0; i < cov.data.length; i++) cov.data[i] = img.data[4 * i + 3];
    const r = ds.image(v), box = ds.frame(v).headBox;
    const overReal = composite(img, cov, r), overPlate = composite(img, cov, plate);
    real.push({ index: v, quality: frameQuality(r, overReal, box, opts.ssimMode) });
    plated.push({ index: v, quality: frameQuality(r, overPlate, box, opts.ssimMode) });
    opts.onFrame?.(v, overReal);
    opts.onPlateFrame?.(v, overPlate);
  }
  const ms = (performance.now() - t0) / idx.length;
  const name = opts.name ?? 'ours';
  return {
    overReal: { name: `${name} (over real frame)`, frames: real, mean: meanQuality(real.map((r) => r.quality)), msPerFrame: ms },
    overPlate: { name: `${name} (over plate)`, frames: plated, mean: meanQuality(plated.map((r) => r.quality)), msPerFrame: ms },
  };
}

function readRendered(ds: EvalDataset, file: string): Image {
  const img = decodePng(readFileSync(file));
  if (img.channels !== 4) throw new EvalError(`${file} has no alpha channel: write the model's coverage into alpha (RGBA PNG)`, 'BAD_INPUT');
  if (img.width !== ds.width || img.height !== ds.height) throw new EvalError(`${file} is ${img.width}x${img.height}, the dataset's frames are ${ds.width}x${ds.height}`, 'SIZE_MISMATCH');
  return img;
}

/** Checks a rendered-frames folder before any work: every held-out frame present, the first readable. */
export function checkRendered(ds: EvalDataset, dir: string, frames?: number[]): void {
  const idx = heldOut(ds, frames);
  if (!existsSync(dir)) throw new EvalError(`rendered frames folder not found: ${dir}`, 'BAD_INPUT');
  const missing = idx.filter((v) => !existsSync(join(dir, `${pad(v)}.png`)));
  if (missing.length)
    throw new EvalError(`${missing.length} of ${idx.length} rendered frames are missing from ${dir} (first: ${pad(missing[0])}.png): render every held-out frame (${idx[0]}-${idx[idx.length - 1]}) as an RGBA PNG named by its frame index`, 'BAD_INPUT');
  readRendered(ds, join(dir, `${pad(idx[0])}.png`));
}
