/** The training loop of `dyntet-train fit`: schedule, logs, validation, atomic checkpoints, exact resume. */
import { appendFileSync, existsSync, mkdirSync, readFileSync, renameSync, writeFileSync, truncateSync } from 'node:fs';
import { join } from 'node:path';
import { createTrainer, type Device, type NativeTrainer, type StartShapeInput, type TrainerConfig } from '../native/index.js';
import { encodePng, createImage, floatToImage, resize } from '../image/index.js';
import { writeRunArtifacts } from './artifacts.js';
import { conditionWindow, loadDataset, unitFloats, type FitData, type FitFrame } from './data.js';

/** Run options beside the native model config; every key is documented in docs/training.md (fit section). */
export interface FitOptions {
  steps: number;
  batch: number;
  /** Training image size (frames, masks and boxes are downscaled to it); 0 = the dataset's size. */
  size: number;
  checkpointEvery: number;
  validateEvery: number;
  logEvery: number;
  /**
   * Standard deviation of Gaussian noise added to every training window's blendshapes (0 = none):
   * neighbouring expressions then share one deformation and texture instead of each training frame
   * getting a code of its own, which is what held-out frames need. Seeded by step (exact resume).
   */
  conditionNoise: number;
  /**
   * The canonical shape training starts from: "masks", the visual hull of the training frames'
   * head masks bounded in depth by the init ellipsoid (native/trainer/start_shape.h), so the
   * surface starts out covering wide hair; or "ellipsoid", model.init_center/init_radii alone.
   */
  startShape: 'masks' | 'ellipsoid';
  /** With startShape "masks": the bounding ellipsoid's x and y radii are model.init_radii times this. */
  startShapeExpand: number;
  /**
   * Learn a small rigid correction of every training frame's tracked head pose from the image and
   * silhouette losses (model.pose_start, lr_pose_rotation, lr_pose_translation, w_pose_reg), so that
   * the frames register onto one canonical texture. Training only: renders use the tracked poses.
   */
  poseRefine: boolean;
  model: TrainerConfig;
}

export const DEFAULT_FIT: FitOptions = { steps: 3000, batch: 4, size: 0, checkpointEvery: 250, validateEvery: 500, logEvery: 10, conditionNoise: 0, startShape: 'ellipsoid', startShapeExpand: 1.3, poseRefine: false, model: {} };

export class FitConfigError extends Error {
  override name = 'FitConfigError';
}

export function resolveFitOptions(user: Partial<FitOptions>): FitOptions {
  const o = { ...DEFAULT_FIT, ...user, model: { ...(user.model ?? {}) } };
  for (const k of ['steps', 'batch', 'checkpointEvery', 'validateEvery', 'logEvery'] as const)
    if (!Number.isInteger(o[k]) || o[k] < 1) throw new FitConfigError(`config "${k}" must be a positive integer, got ${JSON.stringify(o[k])}`);
  if (!Number.isInteger(o.size) || o.size < 0) throw new FitConfigError(`config "size" must be 0 (dataset size) or a positive integer`);
  if (typeof o.conditionNoise !== 'number' || !(o.conditionNoise >= 0 && o.conditionNoise <= 1))
    throw new FitConfigError(`config "conditionNoise" must be a number in [0, 1] (blendshape units), got ${JSON.stringify(o.conditionNoise)}`);
  if (o.startShape !== 'masks' && o.startShape !== 'ellipsoid')
    throw new FitConfigError(`config "startShape" must be "masks" or "ellipsoid", got ${JSON.stringify(o.startShape)}`);
  if (typeof o.startShapeExpand !== 'number' || !(o.startShapeExpand >= 1 && o.startShapeExpand <= 3))
    throw new FitConfigError(`config "startShapeExpand" must be a number in [1, 3], got ${JSON.stringify(o.startShapeExpand)}`);
  if (typeof o.poseRefine !== 'boolean') throw new FitConfigError(`config "poseRefine" must be true or false, got ${JSON.stringify(o.poseRefine)}`);
  const rigid = o.model.deform_rigid_steps ?? 0;
  if (typeof rigid === 'number' && rigid >= o.steps)
    throw new FitConfigError(`config model.deform_rigid_steps (${rigid}) must be below "steps" (${o.steps}): the deformation would never act, ` +
      'and the avatar could not follow expressions; lower it or raise "steps"');
  if (o.model.pose_frames !== undefined)
    throw new FitConfigError('config model.pose_frames is set by fit (the number of training frames): use "poseRefine": true instead');
  return o;
}

/** Deterministic frame choice per step, so a resumed run sees the same batches as an uninterrupted one. */
function batchIndices(step: number, batch: number, n: number, seed: number): number[] {
  let s = (Math.imul(step + 1, 0x9e3779b1) ^ seed) >>> 0;
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    s = (Math.imul(s ^ (s >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0;
    out.push(s % n);
  }
  return out;
}

/** Adds N(0, sigma^2) to each value, from a generator seeded by (step, seed), so a resumed run sees the same noise. */
export function addConditionNoise(windows: Float32Array, sigma: number, step: number, seed: number): void {
  if (sigma <= 0) return;
  let s = (Math.imul(step + 7, 0x85ebca6b) ^ Math.imul(seed + 1, 0xc2b2ae35)) >>> 0;
  const uniform = () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = Math.imul(s ^ (s >>> 15), s | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296; // in (0, 1)
  };
  for (let i = 0; i < windows.length; i += 2) {
    // Box-Muller: two normals per pair of uniforms.
    const r = sigma * Math.sqrt(-2 * Math.log(uniform())), a = 2 * Math.PI * uniform();
    windows[i] += r * Math.cos(a);
    if (i + 1 < windows.length) windows[i + 1] += r * Math.sin(a);
  }
}

/** Whether the landmark motion prior acts at `step` (native/trainer's rule, so batches carry its targets only then). */
export function motionActive(cfg: { w_landmark_motion: number; landmark_motion_steps: number }, step: number): boolean {
  return cfg.w_landmark_motion > 0 && (cfg.landmark_motion_steps === 0 || step < cfg.landmark_motion_steps);
}

function makeBatch(data: FitData, frames: FitFrame[], window: number, prior: boolean, frameIds?: number[], motion = false) {
  const S = data.size, B = frames.length;
  // Frames and masks cross to the trainer as bytes (4x less to copy and upload than floats).
  const images = new Uint8Array(B * S * S * 3), masks = new Uint8Array(B * S * S), poses = new Float32Array(B * 16);
  const windows = new Float32Array(B * window * 52), boxes = new Float32Array(B * 12);
  frames.forEach((f, b) => {
    images.set(f.image, b * S * S * 3);
    masks.set(f.mask, b * S * S);
    poses.set(f.pose, b * 16);
    windows.set(conditionWindow(data.blendshapes, f.index, window), b * window * 52);
    boxes.set(f.boxes, b * 12);
  });
  let motionTargets: Float32Array | undefined;
  if (motion) {
    motionTargets = new Float32Array(B * data.priorPoints.length);
    frames.forEach((f, b) => motionTargets!.set(f.landmarks, b * data.priorPoints.length));
  }
  return { frames: B, images, masks, poses, windows, boxes, ...(prior || motion ? { priorPoints: data.priorPoints } : {}),
    ...(motionTargets ? { motionTargets } : {}), ...(frameIds ? { frameIds: Int32Array.from(frameIds) } : {}) };
}

export function psnr(a: Float32Array, b: Float32Array): number {
  let se = 0;
  for (let i = 0; i < a.length; i++) se += (a[i] - b[i]) ** 2;
  const mse = se / a.length;
  return mse > 0 ? -10 * Math.log10(mse) : 99;
}

/** The training frames' head masks and poses, as Trainer.startFromMasks takes them. */
export function trainingMasks(data: FitData): StartShapeInput {
  const S = data.size, n = data.train.length;
  const masks = new Uint8Array(n * S * S), poses = new Float32Array(n * 16);
  data.train.forEach((f, k) => { masks.set(f.mask, k * S * S); poses.set(f.pose, k * 16); });
  return { frames: n, masks, poses };
}

/** n items evenly spread over `items` (all of them when there are fewer). */
function spread<T>(items: T[], n: number): T[] {
  if (items.length <= n) return items;
  return Array.from({ length: n }, (_, k) => items[Math.floor(((k + 0.5) * items.length) / n)]);
}

export function atomicWrite(path: string, bytes: Uint8Array | string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, bytes);
  renameSync(tmp, path);
}

export interface FitRunArgs { dataset: string; out: string; options: FitOptions; device: Device; resume: boolean; maxMinutes?: number;
  /** Finish (final validation, checkpoint, eval frames) once this much time has passed, even before `steps`. */
  timeLimitMinutes?: number; quiet?: boolean; /** Size of the eval/ frames (the dataset's). */ fullSize?: number }
export interface FitResult { steps: number; stoppedEarly: boolean; valPsnr: number; seconds: number; /** Updates skipped for NaN/Inf gradients. */ skippedSteps: number }

/** Renders the validation frames over the plate; returns mean PSNR over the full frame. */
export function validate(t: NativeTrainer, data: FitData, window: number, dir?: string): number {
  let sum = 0;
  for (const f of data.val) {
    const r = t.render({ pose: f.pose, window: conditionWindow(data.blendshapes, f.index, window), background: data.background });
    sum += psnr(r.rgb, unitFloats(f.image));
    if (dir) writeFileSync(join(dir, `${String(f.index).padStart(6, '0')}.png`), encodePng(floatToImage(r.rgb, data.size, data.size)));
  }
  return sum / data.val.length;
}

export function runFit(a: FitRunArgs): FitResult {
  const t0 = Date.now();
  const data = loadDataset(a.dataset, a.options.size || undefined); // throws before any native work
  mkdirSync(a.out, { recursive: true });
  const ckpt = join(a.out, 'checkpoint.bin');
  const log = join(a.out, 'log.jsonl');
  // Pose refinement learns one correction per training frame, indexed by its place in data.train.
  const model: TrainerConfig = { ...a.options.model, width: data.size, height: data.size, pose_frames: a.options.poseRefine ? data.train.length : 0 };
  const t = createTrainer(model, { device: a.device });
  // The fp16 MLP path (native/train/README.md) is opt-in and not yet shown to train as well as fp32.
  const mlpPath = process.env.DYNTET_MLP_PATH ?? '';
  if (a.device === 'cuda' && (mlpPath === 'half' || mlpPath === 'half-layered') && !a.quiet)
    process.stderr.write(`DYNTET_MLP_PATH=${mlpPath}: fp16 tensor-core MLPs (faster steps; experimental: compare validation PSNR with an fp32 run, bench/compare_mlp_paths_gpu.sh)\n`);
  if (a.resume && existsSync(ckpt)) {
    t.loadCheckpoint(new Uint8Array(readFileSync(ckpt)));
    // Drop log lines written after the checkpoint so the log matches the resumed state.
    if (existsSync(log)) {
      const lines = readFileSync(log, 'utf8').split('\n').filter((l) => l && JSON.parse(l).step <= t.steps);
      truncateSync(log, 0);
      if (lines.length) appendFileSync(log, lines.join('\n') + '\n');
    }
  } else {
    writeFileSync(log, '');
    if (a.options.startShape === 'masks') {
      const inside = t.startFromMasks({ ...trainingMasks(data), expand: a.options.startShapeExpand });
      if (!a.quiet) process.stderr.write(`start shape: hull of ${data.train.length} head masks, ${inside} grid vertices inside\n`);
    }
  }
  const cfg = t.config();
  atomicWrite(join(a.out, 'run.json'), JSON.stringify({ dataset: a.dataset, options: a.options, model: cfg, device: a.device, size: data.size }, null, 2));
  const window = cfg.cond_window;
  const o = a.options;
  let stoppedEarly = false;
  let valPsnr = NaN;
  let skipped = 0;
  const start = Date.now(), startStep = t.steps;
  while (t.steps < o.steps) {
    const step = t.steps;
    const ids = batchIndices(step, o.batch, data.train.length, cfg.seed);
    const batch = makeBatch(data, ids.map((i) => data.train[i]), window, step < cfg.prior_steps, o.poseRefine ? ids : undefined,
      motionActive(cfg, step));
    addConditionNoise(batch.windows, o.conditionNoise, step, cfg.seed);
    const l = t.step(batch);
    const done = t.steps;
    if (l.skipped) skipped++;
    if (done % o.logEvery === 0 || done === o.steps) {
      const mse = l.photo / Math.max(1e-12, cfg.w_photo);
      const rec = { step: done, ...l, psnr: mse > 0 ? -10 * Math.log10(mse) : 99, seconds: (Date.now() - t0) / 1000 };
      appendFileSync(log, JSON.stringify(rec) + '\n');
      if (!a.quiet) {
        const rate = (done - startStep) / ((Date.now() - start) / 1000);
        const eta = (o.steps - done) / Math.max(rate, 1e-9);
        process.stderr.write(`\rstep ${done}/${o.steps} loss ${l.total.toFixed(4)} photo ${l.photo.toFixed(5)} sil ${l.silhouette.toFixed(4)} PSNR ${rec.psnr.toFixed(2)} ${rate.toFixed(2)} it/s ETA ${eta.toFixed(0)} s${skipped ? ` (${skipped} steps skipped: NaN/Inf gradients)` : ''}   `);
      }
    }
    const outOfTime = a.timeLimitMinutes !== undefined && (Date.now() - t0) / 60000 > a.timeLimitMinutes;
    if (done % o.validateEvery === 0 || done === o.steps || outOfTime) {
      const dir = join(a.out, 'val', String(done).padStart(6, '0'));
      mkdirSync(dir, { recursive: true });
      valPsnr = validate(t, data, window, dir);
      // The same measure on a few training frames: the gap to valPsnr is how much the model overfits.
      const trainPsnr = validate(t, { ...data, val: spread(data.train, 8) }, window);
      appendFileSync(log, JSON.stringify({ step: done, valPsnr, trainPsnr, ...(o.poseRefine ? poseCorrections(t) : {}) }) + '\n');
    }
    if (done % o.checkpointEvery === 0 || done === o.steps || outOfTime) atomicWrite(ckpt, t.saveCheckpoint());
    if (outOfTime) break;
    if (a.maxMinutes !== undefined && (Date.now() - t0) / 60000 > a.maxMinutes) {
      atomicWrite(ckpt, t.saveCheckpoint());
      stoppedEarly = true;
      break;
    }
  }
  if (!a.quiet) process.stderr.write('\n');
  if (!stoppedEarly) {
    writeEvalFrames(t, data, join(a.out, 'eval'), a.fullSize ?? data.size);
    const report = writeRunArtifacts(t, data, a.out);
    if (!a.quiet) process.stderr.write(`report: ${report}\n`);
  }
  return { steps: t.steps, stoppedEarly, valPsnr, seconds: (Date.now() - t0) / 1000, skippedSteps: skipped };
}

/** Mean and largest learned pose correction over the training frames (degrees, mm). */
export function poseCorrections(t: NativeTrainer): { poseRotationDeg: number; poseRotationMaxDeg: number; poseTranslationMm: number; poseTranslationMaxMm: number } {
  const { data, layout } = t.getParameters();
  const stats = (name: string, scale: number) => {
    const b = layout.find((l) => l.name === name);
    if (!b) throw new Error(`internal: no ${name} parameters (pose refinement is off)`);
    let sum = 0, max = 0;
    for (let k = 0; k < b.count; k += 3) {
      const n = Math.hypot(data[b.offset + k], data[b.offset + k + 1], data[b.offset + k + 2]) * scale;
      sum += n; max = Math.max(max, n);
    }
    const round = (x: number) => Math.round(x * 1000) / 1000;
    return [round(sum / (b.count / 3)), round(max)];
  };
  const [r, rm] = stats('pose_rotation', 180 / Math.PI), [tr, tm] = stats('pose_translation', 10);
  return { poseRotationDeg: r, poseRotationMaxDeg: rm, poseTranslationMm: tr, poseTranslationMaxMm: tm };
}

/**
 * Writes each held-out frame as an RGBA PNG at `fullSize` (straight colour, coverage in alpha), the input
 * that `dyntet-train eval` and runRendered() take. Renders over black, so colour is un-premultiplied here.
 */
export function writeEvalFrames(t: NativeTrainer, data: FitData, dir: string, fullSize: number): void {
  mkdirSync(dir, { recursive: true });
  const window = t.config().cond_window;
  const S = data.size;
  for (const f of data.val) {
    const r = t.render({ pose: f.pose, window: conditionWindow(data.blendshapes, f.index, window) });
    let img = createImage(S, S, 4);
    for (let i = 0; i < S * S; i++) {
      const a = Math.max(0, Math.min(1, r.coverage[i]));
      for (let c = 0; c < 3; c++) img.data[4 * i + c] = a > 1e-6 ? Math.max(0, Math.min(255, Math.round((r.rgb[3 * i + c] / a) * 255))) : 0;
      img.data[4 * i + 3] = Math.round(a * 255);
    }
    if (fullSize !== S) img = resize(img, fullSize, fullSize);
    writeFileSync(join(dir, `${String(f.index).padStart(6, '0')}.png`), encodePng(img));
  }
}
