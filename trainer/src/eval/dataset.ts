// Read access to a prepared dataset (docs/dataset-format.md) for evaluation: frames, masks,
// landmarks, coefficients, boxes and the train / held-out split.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { decodePng, type Image } from '../image/index.js';
import { EvalError } from './errors.js';
import type { Box } from './metrics.js';

export const NUM_LANDMARKS = 478;

export interface EvalFrame {
  index: number;
  blendshapes: Float32Array;
  /** Column-major 4x4 pose (smoothed), canonical face space (cm) to camera. */
  pose: Float32Array;
  /** Head box from the tracker: the landmarks' bounding box grown by 15% of its larger side. */
  headBox: Box;
  mouthBox: Box;
}

export class EvalDataset {
  readonly width: number;
  readonly height: number;
  readonly fps: number;
  readonly train: number[];
  readonly val: number[];
  private readonly frames = new Map<number, EvalFrame>();
  private readonly landmarks: Float32Array;
  private plateCache?: Image;

  private constructor(readonly dir: string, meta: Record<string, unknown>, tracking: Record<string, unknown>, landmarks: Float32Array) {
    this.width = Number(meta.width);
    this.height = Number(meta.height);
    this.fps = Number(meta.fps);
    const split = meta.split as { train?: number[]; val?: number[] } | undefined;
    this.train = split?.train ?? [];
    this.val = split?.val ?? [];
    this.landmarks = landmarks;
    for (const r of (tracking.frames as Array<Record<string, unknown>>) ?? []) {
      if (!r.valid) continue;
      const boxes = r.boxes as { head: Box; mouth: Box };
      this.frames.set(Number(r.index), {
        index: Number(r.index),
        blendshapes: Float32Array.from(r.blendshapes as number[]),
        pose: Float32Array.from(r.pose as number[]),
        headBox: boxes.head,
        mouthBox: boxes.mouth,
      });
    }
  }

  /** Opens a finished dataset written by `dyntet-train prepare`. */
  static open(dir: string): EvalDataset {
    const p = join(dir, 'dataset.json');
    if (!existsSync(p)) throw new EvalError(`${dir} is not a prepared dataset (no dataset.json): run \`dyntet-train prepare <video> --out ${dir}\` first`, 'DATASET');
    let meta: Record<string, unknown>, tracking: Record<string, unknown>;
    try {
      meta = JSON.parse(readFileSync(p, 'utf8'));
      tracking = JSON.parse(readFileSync(join(dir, 'tracking.json'), 'utf8'));
    } catch (e) {
      throw new EvalError(`${dir} holds an unreadable dataset (${(e as Error).message}): run \`dyntet-train prepare\` on the video again`, 'DATASET');
    }
    if (meta.complete !== true) throw new EvalError(`${dir} holds an unfinished dataset: run \`dyntet-train prepare\` again to complete it`, 'DATASET');
    const n = Number(meta.frames);
    const lmBytes = readFileSync(join(dir, 'landmarks.f32'));
    if (lmBytes.length !== n * NUM_LANDMARKS * 3 * 4)
      throw new EvalError(`${dir}/landmarks.f32 has ${lmBytes.length} bytes, expected ${n * NUM_LANDMARKS * 12} for ${n} frames: run prepare again`, 'DATASET');
    const lm = new Float32Array(lmBytes.buffer.slice(lmBytes.byteOffset, lmBytes.byteOffset + lmBytes.length));
    const ds = new EvalDataset(dir, meta, tracking, lm);
    if (!ds.train.length) throw new EvalError(`${dir} has no training frames in its split: prepare it with a smaller --val fraction`, 'DATASET');
    return ds;
  }

  frame(i: number): EvalFrame {
    const f = this.frames.get(i);
    if (!f) throw new EvalError(`frame ${i} of ${this.dir} has no tracked face: it cannot be evaluated`, 'DATASET');
    return f;
  }

  /** The frame's 478 landmarks as [x, y, z] in pixels (x, y from the top-left corner). */
  landmarksOf(i: number): Float32Array {
    return this.landmarks.subarray(i * NUM_LANDMARKS * 3, (i + 1) * NUM_LANDMARKS * 3);
  }

  image(i: number): Image {
    return this.readPng(join('frames', `${pad(i)}.png`));
  }

  headMask(i: number): Image {
    return this.readPng(join('masks', 'head', `${pad(i)}.png`));
  }

  plate(): Image {
    return (this.plateCache ??= this.readPng('background.png'));
  }

  private readPng(rel: string): Image {
    const p = join(this.dir, rel);
    if (!existsSync(p)) throw new EvalError(`${p} is missing from the dataset: run \`dyntet-train prepare\` again`, 'DATASET');
    return decodePng(readFileSync(p));
  }
}

export const pad = (i: number) => String(i).padStart(6, '0');
