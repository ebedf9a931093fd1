/** Loads a prepared dataset for training, checked up front so that bad input fails before native work. */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePng, imageToFloat, resize, type Image } from '../image/index.js';

export class FitDataError extends Error {
  override name = 'FitDataError';
}

export interface FitFrame {
  index: number;
  /** size x size x 3 8-bit RGB: the batch uploads bytes and the trainer converts them (v / 255). */
  image: Uint8Array;
  /** size x size 8-bit head mask. */
  mask: Uint8Array;
  pose: Float32Array; // 16
  boxes: Float32Array; // 3 x 4 (mouth, left eye, right eye), pixels at the training size
  /** 478 x 3 landmarks as tracked in this frame, canonical face space (cm; NaN when not tracked). */
  landmarks: Float32Array;
}

export interface FitData {
  size: number;
  fps: number;
  train: FitFrame[];
  val: FitFrame[];
  /** frames x 52 blendshapes of the whole clip (invalid frames hold their nearest valid neighbour's). */
  blendshapes: Float32Array[];
  background: Float32Array; // size x size x 3
  /** Mean canonical landmark mesh of the training frames (478 x 3, cm). */
  priorPoints: Float32Array;
}

interface TrackFrame { index: number; valid: boolean; blendshapes?: number[]; pose?: number[]; boxes?: Record<string, number[]> }

function need(dir: string, rel: string): string {
  const p = join(dir, rel);
  if (!existsSync(p)) throw new FitDataError(`dataset ${dir} is missing ${rel}: run \`dyntet-train prepare\` on the video again`);
  return p;
}

function toFloat(img: Image, size: number, channels: 1 | 3): Float32Array {
  return imageToFloat(img.width === size && img.height === size ? img : resize(img, size, size), channels);
}

/** imageToFloat's layout (extra channels dropped, gray repeated) before its v / 255. */
function toBytes(img: Image, size: number, channels: 1 | 3): Uint8Array {
  const im = img.width === size && img.height === size ? img : resize(img, size, size);
  if (im.channels === channels) return im.data;
  const n = size * size, out = new Uint8Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = im.data[i * im.channels + Math.min(c, im.channels - 1)];
  return out;
}

/** 8-bit frame data as floats in [0, 1], the values the trainer trains on (v / 255). */
export function unitFloats(bytes: Uint8Array): Float32Array {
  const out = new Float32Array(bytes.length);
  for (let i = 0; i < bytes.length; i++) out[i] = bytes[i] / 255;
  return out;
}

/** Reads dataset.json and tracking.json and checks every file a run needs; loads nothing heavy. */
export function checkDataset(dir: string): { meta: Record<string, any>; tracking: { frames: TrackFrame[] } } {
  const metaPath = need(dir, 'dataset.json');
  let meta: Record<string, any>;
  try { meta = JSON.parse(readFileSync(metaPath, 'utf8')); } catch (e) { throw new FitDataError(`${metaPath} is not valid JSON (${(e as Error).message}): run prepare again`); }
  if (meta.format !== 'dyntet-dataset' || meta.version !== 1) throw new FitDataError(`${dir} holds format ${meta.format} version ${meta.version}; fit reads dyntet-dataset version 1: run prepare again`);
  if (meta.complete !== true) throw new FitDataError(`${dir} is an unfinished dataset: run prepare again`);
  const split = meta.split ?? {};
  if (!Array.isArray(split.train) || split.train.length === 0) throw new FitDataError(`${dir} has no training frames`);
  if (!Array.isArray(split.val) || split.val.length === 0) throw new FitDataError(`${dir} has no validation frames: prepare it with --val above 0`);
  const tracking = JSON.parse(readFileSync(need(dir, 'tracking.json'), 'utf8'));
  need(dir, 'background.png');
  need(dir, 'canonical.f32');
  for (const i of [...split.train, ...split.val]) {
    const id = String(i).padStart(6, '0');
    need(dir, `frames/${id}.png`);
    need(dir, `masks/head/${id}.png`);
    const t = tracking.frames?.[i];
    if (!t || !t.valid || t.pose?.length !== 16 || t.blendshapes?.length !== 52) throw new FitDataError(`${dir}: tracking of frame ${i} is missing or invalid: run prepare again`);
  }
  return { meta, tracking };
}

/** Loads the split frames at `size` x `size` (downscaling frames, masks and boxes). */
export function loadDataset(dir: string, size?: number): FitData {
  const { meta, tracking } = checkDataset(dir);
  const S = size ?? meta.width;
  if (!Number.isInteger(S) || S < 16 || S > meta.width) throw new FitDataError(`image size ${S} must be an integer from 16 to the dataset's ${meta.width}`);
  const scale = S / meta.width;
  const n = tracking.frames.length;
  const blendshapes: Float32Array[] = [];
  let last: number[] | undefined;
  for (let i = 0; i < n; i++) {
    const t = tracking.frames[i];
    if (t.valid && t.blendshapes) last = t.blendshapes;
    blendshapes.push(new Float32Array(last ?? new Array(52).fill(0)));
  }
  // Leading invalid frames take the first valid frame's coefficients.
  const firstValid = tracking.frames.findIndex((t) => t.valid);
  for (let i = 0; i < firstValid; i++) blendshapes[i] = blendshapes[firstValid];
  const canon = new Float32Array(readFileSync(join(dir, 'canonical.f32')).buffer.slice(0));
  const L = 478 * 3;
  if (canon.length < n * L) throw new FitDataError(`${dir}/canonical.f32 holds ${canon.length / L} frames of landmarks, tracking.json ${n}: run prepare again`);
  const load = (i: number): FitFrame => {
    const id = String(i).padStart(6, '0');
    const t = tracking.frames[i];
    const boxes = new Float32Array(12);
    ['mouth', 'leftEye', 'rightEye'].forEach((k, b) => {
      const bx = t.boxes?.[k] ?? [0, 0, 0, 0];
      for (let j = 0; j < 4; j++) boxes[b * 4 + j] = bx[j] * scale;
    });
    return {
      index: i,
      image: toBytes(decodePng(readFileSync(join(dir, 'frames', `${id}.png`))), S, 3),
      mask: toBytes(decodePng(readFileSync(join(dir, 'masks', 'head', `${id}.png`))), S, 1),
      pose: new Float32Array(t.pose!),
      boxes,
      landmarks: canon.slice(i * L, (i + 1) * L),
    };
  };
  const prior = new Float32Array(L);
  let cnt = 0;
  for (const i of meta.split.train as number[]) {
    const off = i * L;
    if (!Number.isFinite(canon[off])) continue;
    for (let k = 0; k < L; k++) prior[k] += canon[off + k];
    cnt++;
  }
  if (cnt > 0) for (let k = 0; k < prior.length; k++) prior[k] /= cnt;
  return {
    size: S,
    fps: meta.fps,
    train: (meta.split.train as number[]).map(load),
    val: (meta.split.val as number[]).map(load),
    blendshapes,
    background: toFloat(decodePng(readFileSync(join(dir, 'background.png'))), S, 3),
    priorPoints: prior,
  };
}

/** cond_window frames of blendshapes centred on `frame`, clamped at the clip's ends. */
export function conditionWindow(blendshapes: Float32Array[], frame: number, window: number): Float32Array {
  const out = new Float32Array(window * 52);
  const half = (window - 1) >> 1; // model.h: clamp(t + j - (W-1)/2, 0, n-1)
  for (let k = 0; k < window; k++) {
    const f = Math.min(blendshapes.length - 1, Math.max(0, frame - half + k));
    out.set(blendshapes[f], k * 52);
  }
  return out;
}
