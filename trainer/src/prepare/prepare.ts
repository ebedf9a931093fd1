// `dyntet-train prepare`: video -> dataset (frames, tracking, masks, plate, split, report).
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { describePoseCoverage, poseCoverage } from '../eval/pose-coverage.js';
import { decodePng, encodePng } from '../image/index.js';
import { Progress } from '../progress.js';
import { trackerCamera } from './camera.js';
import { decodeFrames, extractAudio, probeVideo, type VideoInfo } from './decode.js';
import { PrepareError } from './errors.js';
import { refinePoses } from './pose_refine.js';
import { canonicalMesh, DEFAULT_POSE_SMOOTHING_HZ, landmarkBox, landmarksToPixels, LM, NUM_LANDMARKS, smoothPoses, type Box } from './geometry.js';
import { frameMasks, PlateBuilder, shiftMatte, upsampleMatte } from './masks.js';
import { writeReport } from './report.js';
import { MATTE_SIZE, Tracker, type RawFace, type RawFrame } from './tracker.js';

export const DATASET_VERSION = 1;
const BATCH = 25;

export interface PrepareOptions {
  video: string;
  out: string;
  faceModel?: string;
  size?: number;
  fps?: number;
  /** Fraction of the clip (its end) held out for validation. */
  valFraction?: number;
  minFrames?: number;
  /** Run the person segmenter on every Nth frame and shift its matte with the face in between. */
  matteEvery?: number;
  maxFrames?: number;
  /** One Euro cutoff at rest for the head poses, Hz; 0 keeps the re-solved poses unsmoothed. */
  poseSmoothing?: number;
  quiet?: boolean;
  chromium?: string;
}

export interface FrameRecord {
  index: number;
  file: string;
  valid: boolean;
  blendshapes?: number[];
  pose?: number[];
  poseRaw?: number[];
  boxes?: { mouth: Box; leftEye: Box; rightEye: Box; head: Box };
  /** Number of faces the tracker saw. */
  faces: number;
}

/** Milliseconds (per frame in results) of each stage; track and matte are measured inside the page. */
export interface StageTimes {
  decode: number;
  /** Chromium launch and model loading. */
  browserStart: number;
  /** FaceLandmarker.detectForVideo. */
  track: number;
  /** Selfie segmentation and its readback. */
  matte: number;
  /** The rest of the browser loop: image decoding in the page, result transfer, cache writes. */
  browserOther: number;
  masks: number;
  report: number;
  total: number;
}

export interface PrepareResult {
  dir: string;
  frames: number;
  valid: number;
  excluded: Array<{ index: number; reason: string }>;
  msPerFrame: StageTimes;
  resumedFrames: number;
  /** When held-out frames turn the head beyond the training frames' range: what to know (else null). */
  poseNote: string | null;
}

export const DEFAULT_MODEL_CACHE = join(homedir(), '.cache', 'dyntet', 'face_landmarker.task');

/** The face model: --face-model, then $DYNTET_FACE_MODEL, then the cache path. */
export function resolveFaceModel(explicit?: string): string {
  const cands: Array<[string, string]> = [];
  if (explicit) cands.push([explicit, '--face-model']);
  else if (process.env.DYNTET_FACE_MODEL) cands.push([process.env.DYNTET_FACE_MODEL, 'DYNTET_FACE_MODEL']);
  else cands.push([DEFAULT_MODEL_CACHE, 'the model cache']);
  const [p, from] = cands[0];
  if (!existsSync(p) || !statSync(p).isFile())
    throw new PrepareError(
      `face model not found at ${p} (from ${from}): download MediaPipe's face_landmarker.task (docs/dataset-format.md, "The face model", has the download address) and pass it with --face-model, set DYNTET_FACE_MODEL, or put it at ${DEFAULT_MODEL_CACHE}`,
      'MODEL_MISSING',
    );
  // A .task is a zip archive; the published file has a couple of bytes before the first entry.
  const head = readFileSync(p).subarray(0, 64);
  if (Buffer.from(head).indexOf('PK\x03\x04', 0, 'latin1') < 0)
    throw new PrepareError(`${p} is not a MediaPipe .task bundle (not a zip archive): download face_landmarker.task again`, 'MODEL_MISSING');
  return resolve(p);
}

function sha256File(p: string): string {
  return createHash('sha256').update(readFileSync(p)).digest('hex');
}

function writeAtomic(path: string, data: string | Uint8Array): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

const pad = (i: number) => String(i).padStart(6, '0');

/** Picks one face per frame: the largest at the start, then the one that overlaps it most (IoU). */
function chooseFaces(raw: RawFrame[], w: number, h: number): Array<RawFace | undefined> {
  const box = (f: RawFace): Box => {
    let x0 = 1, y0 = 1, x1 = 0, y1 = 0;
    for (let i = 0; i < NUM_LANDMARKS; i++) {
      x0 = Math.min(x0, f.landmarks[3 * i]); x1 = Math.max(x1, f.landmarks[3 * i]);
      y0 = Math.min(y0, f.landmarks[3 * i + 1]); y1 = Math.max(y1, f.landmarks[3 * i + 1]);
    }
    return [x0 * w, y0 * h, x1 * w, y1 * h];
  };
  const area = (b: Box) => Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const iou = (a: Box, b: Box) => {
    const i = area([Math.max(a[0], b[0]), Math.max(a[1], b[1]), Math.min(a[2], b[2]), Math.min(a[3], b[3])]);
    return i / (area(a) + area(b) - i);
  };
  let prev: Box | undefined;
  return raw.map((r) => {
    const faces = r.faces.filter((f) => f.landmarks.length === NUM_LANDMARKS * 3 && f.pose.length === 16 && f.blendshapes.length === 52);
    if (!faces.length) return undefined;
    const boxes = faces.map(box);
    let best = 0;
    const score = (k: number) => (prev ? iou(boxes[k], prev) : 0) * 1e6 + area(boxes[k]);
    for (let k = 1; k < faces.length; k++) if (score(k) > score(best)) best = k;
    if (prev && iou(boxes[best], prev) < 0.2) {
      // Lost the previous face (cut, occlusion): fall back to the largest.
      for (let k = 0; k < faces.length; k++) if (area(boxes[k]) > area(boxes[best])) best = k;
    }
    prev = boxes[best];
    return faces[best];
  });
}

export async function prepare(opts: PrepareOptions): Promise<PrepareResult> {
  const t0 = performance.now();
  const size = opts.size ?? 512;
  const fps = opts.fps ?? 25;
  const valFraction = opts.valFraction ?? 0.2;
  const minFrames = opts.minFrames ?? 25;
  const matteEvery = opts.matteEvery ?? 3;
  const poseSmoothing = opts.poseSmoothing ?? DEFAULT_POSE_SMOOTHING_HZ;
  if (!Number.isInteger(size) || size < 64 || size > 2048 || size % 16)
    throw new PrepareError(`--size ${size} is not usable: give a multiple of 16 between 64 and 2048 (default 512)`, 'BAD_OPTION');
  if (!(fps > 0 && fps <= 120)) throw new PrepareError(`--fps ${fps} is out of range: give a rate between 1 and 120 (default 25)`, 'BAD_OPTION');
  if (!(valFraction >= 0 && valFraction < 1)) throw new PrepareError(`--val ${valFraction} must be in [0, 1)`, 'BAD_OPTION');
  if (!Number.isInteger(matteEvery) || matteEvery < 1) throw new PrepareError(`--matte-every must be a positive integer`, 'BAD_OPTION');
  if (!(poseSmoothing >= 0 && poseSmoothing <= 25))
    throw new PrepareError(`--pose-smoothing ${poseSmoothing} is out of range: give a cutoff in Hz between 0 (off) and 25 (default ${DEFAULT_POSE_SMOOTHING_HZ})`, 'BAD_OPTION');
  if (!existsSync(opts.video) || !statSync(opts.video).isFile())
    throw new PrepareError(`video not found: ${opts.video}: pass the path of a video file`, 'NOT_A_VIDEO');
  const modelPath = resolveFaceModel(opts.faceModel);
  const info: VideoInfo = probeVideo(opts.video);

  const out = resolve(opts.out);
  if (existsSync(out) && !statSync(out).isDirectory()) throw new PrepareError(`--out ${out} exists and is not a directory`, 'OUT_DIR');
  mkdirSync(out, { recursive: true });
  const datasetJson = join(out, 'dataset.json');
  const key = {
    source: sha256File(opts.video),
    version: DATASET_VERSION, size, fps, matteEvery, matteSize: MATTE_SIZE, maxFrames: opts.maxFrames ?? null,
    model: sha256File(modelPath),
  };
  const keyStr = JSON.stringify(key);
  // The completion marker goes first, so a crash from here on never looks like a finished dataset.
  if (existsSync(datasetJson)) {
    try {
      const prev = JSON.parse(readFileSync(datasetJson, 'utf8'));
      if (prev.complete === true && JSON.stringify(prev.key) === keyStr && !opts.quiet) console.error(`prepare: ${out} is already complete for this video; re-checking`);
    } catch { /* unreadable: rebuilt below */ }
    rmSync(datasetJson);
  }
  const work = join(out, '.work');
  const workKey = join(work, 'key.json');
  if (!existsSync(workKey) || readFileSync(workKey, 'utf8') !== keyStr) {
    // A different video or options: nothing in the folder can be reused.
    for (const d of ['.work', 'frames', 'masks', 'report', 'audio.wav', 'tracking.json', 'landmarks.f32', 'canonical.f32', 'background.png', 'timing.json'])
      rmSync(join(out, d), { recursive: true, force: true });
    mkdirSync(work, { recursive: true });
    writeFileSync(workKey, keyStr);
  }
  const framesDir = join(out, 'frames');
  const times: StageTimes = { decode: 0, browserStart: 0, track: 0, matte: 0, browserOther: 0, masks: 0, report: 0, total: 0 };

  // 1. Decode (skipped when a previous run finished it).
  let td = performance.now();
  const decodedMark = join(work, 'decoded.json');
  if (!existsSync(decodedMark)) {
    rmSync(framesDir, { recursive: true, force: true });
    mkdirSync(framesDir, { recursive: true });
    decodeFrames(opts.video, framesDir, { size, fps, maxFrames: opts.maxFrames });
    if (info.hasAudio) extractAudio(opts.video, join(out, 'audio.wav'), opts.maxFrames ? opts.maxFrames / fps : undefined);
    writeFileSync(decodedMark, JSON.stringify({ frames: readdirSync(framesDir).filter((f) => f.endsWith('.png')).length }));
  }
  const n = JSON.parse(readFileSync(decodedMark, 'utf8')).frames as number;
  times.decode = performance.now() - td;
  if (n < minFrames)
    throw new PrepareError(`the clip is too short: ${n} frames at ${fps} fps (${(n / fps).toFixed(2)} s), at least ${minFrames} are needed; record a longer video (10 s or more is best)`, 'TOO_SHORT');

  // 2. Track, in batches cached under .work so a re-run resumes.
  const raw: RawFrame[] = new Array(n);
  let resumed = 0;
  const todo: Array<[number, number]> = [];
  for (let s = 0; s < n; s += BATCH) {
    const e = Math.min(n, s + BATCH);
    const f = join(work, `track-${pad(s)}.json`);
    if (existsSync(f)) {
      const batch = JSON.parse(readFileSync(f, 'utf8')) as RawFrame[];
      for (const r of batch) raw[r.index] = r;
      resumed += e - s;
    } else todo.push([s, e]);
  }
  if (todo.length) {
    const progress = opts.quiet ? undefined : new Progress('prepare: tracking', n, { unit: 'frames' });
    progress?.update(resumed);
    const tb = performance.now();
    const tracker = await Tracker.start({ framesDir, modelPath, width: size, height: size, fps, matteEvery, chromium: opts.chromium });
    times.browserStart = performance.now() - tb;
    const tl = performance.now();
    try {
      for (const [s, e] of todo) {
        const batch = await tracker.track(s, e);
        writeAtomic(join(work, `track-${pad(s)}.json`), JSON.stringify(batch));
        for (const r of batch) raw[r.index] = r;
        progress?.tick(e - s);
      }
    } finally {
      await tracker.close();
    }
    times.browserOther = performance.now() - tl;
    progress?.finish();
    for (const [s, e] of todo)
      for (let i = s; i < e; i++) {
        times.track += raw[i].ms.track;
        times.matte += raw[i].ms.matte;
      }
    times.browserOther -= times.track + times.matte;
  }

  // 3. Choose the face, smooth poses, build meshes and masks.
  const tm = performance.now();
  const cam = trackerCamera(size, size);
  const chosen = chooseFaces(raw, size, size);
  const excluded: Array<{ index: number; reason: string }> = [];
  chosen.forEach((f, i) => { if (!f) excluded.push({ index: i, reason: 'no face found' }); });
  const valid = chosen.filter(Boolean).length;
  if (valid < minFrames)
    throw new PrepareError(
      `a face was found in only ${valid} of ${n} frames (at least ${minFrames} are needed): use a video where one face is clearly visible, frontal and well lit for most of the clip` +
        (excluded.length ? `; frames without a face: ${summarise(excluded.map((e) => e.index))}` : ''),
      'TOO_FEW_FACES',
    );
  // Re-solve the tracker's poses against one rigid template of this face (pose_refine.ts), then
  // smooth each run of consecutive tracked frames separately (never across a gap).
  const pixels = chosen.map((f) => (f ? landmarksToPixels(f.landmarks, size, size) : undefined));
  const refined = refinePoses(cam, chosen.map((f) => f?.pose), pixels);
  const poses: Array<Float32Array | undefined> = new Array(n);
  for (let s = 0; s < n;) {
    if (!chosen[s]) { s++; continue; }
    let e = s;
    while (e < n && chosen[e]) e++;
    smoothPoses(refined.poses.slice(s, e).map((p) => p!), fps, poseSmoothing).forEach((p, k) => (poses[s + k] = p));
    s = e;
  }
  const landmarks = new Float32Array(n * NUM_LANDMARKS * 3).fill(NaN);
  const canonical = new Float32Array(n * NUM_LANDMARKS * 3).fill(NaN);
  const records: FrameRecord[] = [];
  mkdirSync(join(out, 'masks', 'head'), { recursive: true });
  mkdirSync(join(out, 'masks', 'person'), { recursive: true });
  const plate = new PlateBuilder(size, size);
  let hullMissed = 0;
  let keyMatte: { matte: Uint8Array; cx: number; cy: number } | undefined;
  const centroid = (px: Float32Array) => {
    let x = 0, y = 0;
    for (let i = 0; i < NUM_LANDMARKS; i++) { x += px[3 * i]; y += px[3 * i + 1]; }
    return [x / NUM_LANDMARKS, y / NUM_LANDMARKS];
  };
  for (let i = 0; i < n; i++) {
    const face = chosen[i];
    const file = `frames/${pad(i)}.png`;
    const r = raw[i];
    let matte: Uint8Array | undefined;
    const px = pixels[i];
    if (r.matte) {
      matte = upsampleMatte(new Uint8Array(Buffer.from(r.matte, 'base64')), MATTE_SIZE, size, size);
      if (px) { const [cx, cy] = centroid(px); keyMatte = { matte, cx, cy }; }
    } else if (keyMatte && px) {
      const [cx, cy] = centroid(px);
      matte = shiftMatte(keyMatte.matte, size, size, Math.round(cx - keyMatte.cx), Math.round(cy - keyMatte.cy));
    }
    if (!face || !px || !matte) {
      records.push({ index: i, file, valid: false, faces: r.faces.length });
      if (face && !matte) excluded.push({ index: i, reason: 'no person matte' });
      continue;
    }
    const pose = poses[i]!;
    landmarks.set(px, i * NUM_LANDMARKS * 3);
    canonical.set(canonicalMesh(cam, pose, px), i * NUM_LANDMARKS * 3);
    const m = frameMasks(px, matte, size, size);
    hullMissed += m.hullMissed;
    writeFileSync(join(out, 'masks', 'head', `${pad(i)}.png`), encodePng(m.head, { level: 3 }));
    writeFileSync(join(out, 'masks', 'person', `${pad(i)}.png`), encodePng(m.person, { level: 3 }));
    plate.add(decodePng(readFileSync(join(framesDir, `${pad(i)}.png`))).data, m.head.data);
    const all = Array.from({ length: NUM_LANDMARKS }, (_, k) => k);
    records.push({
      index: i, file, valid: true, faces: r.faces.length,
      blendshapes: face.blendshapes.map(([, s]) => round(s, 6)),
      pose: Array.from(pose, (v) => round(v, 6)),
      poseRaw: face.pose.map((v) => round(v, 6)),
      boxes: {
        mouth: landmarkBox(px, LM.lipsOuter, 0.2, size, size),
        leftEye: landmarkBox(px, LM.leftEye, 0.25, size, size),
        rightEye: landmarkBox(px, LM.rightEye, 0.25, size, size),
        head: landmarkBox(px, all, 0.15, size, size),
      },
    });
  }
  const { plate: plateImg, filledFraction } = plate.build();
  writeFileSync(join(out, 'background.png'), encodePng(plateImg));
  writeFileSync(join(out, 'landmarks.f32'), new Uint8Array(landmarks.buffer));
  writeFileSync(join(out, 'canonical.f32'), new Uint8Array(canonical.buffer));
  excluded.sort((a, b) => a.index - b.index);
  const validIdx = records.filter((r) => r.valid).map((r) => r.index);
  const nTrain = Math.max(1, Math.round(validIdx.length * (1 - valFraction)));
  const split = { train: validIdx.slice(0, nTrain), val: validIdx.slice(nTrain) };
  const names = chosen.find(Boolean)!.blendshapes.map(([name]) => name);
  writeAtomic(join(out, 'tracking.json'), JSON.stringify({ version: DATASET_VERSION, fps, width: size, height: size, blendshapeNames: names, frames: records }));
  times.masks = performance.now() - tm;

  // 4. Report.
  const tr = performance.now();
  writeReport(out, records, landmarks, names, size);
  times.report = performance.now() - tr;
  times.total = performance.now() - t0;
  const perFrame = Object.fromEntries(Object.entries(times).map(([k, v]) => [k, round(v / n, 2)])) as unknown as StageTimes;
  const timing = { msPerFrame: perFrame, resumedFrames: resumed };

  const dataset = {
    format: 'dyntet-dataset',
    version: DATASET_VERSION,
    complete: true,
    key,
    source: { file: opts.video.split(/[\\/]/).pop(), ...info },
    fps, width: size, height: size, frames: n,
    camera: cam,
    conventions: {
      pose: 'column-major 4x4, canonical face space (cm) -> camera space, camera looks down -z (MediaPipe facial transformation matrix), re-solved against a rigid template of the face, then smoothed (One Euro, stats.poseSmoothingHz at rest; 0: not smoothed)',
      landmarks: 'landmarks.f32: float32 [frames][478][3]: x, y in pixels (origin top-left), z in pixels (MediaPipe relative depth, smaller is nearer); NaN for excluded frames',
      canonical: 'canonical.f32: float32 [frames][478][3], cm, canonical face space (pose removed); NaN for excluded frames',
    },
    files: { frames: 'frames/%06d.png', headMasks: 'masks/head/%06d.png', personMasks: 'masks/person/%06d.png', background: 'background.png', tracking: 'tracking.json', audio: info.hasAudio ? 'audio.wav' : null, report: 'report/index.html', contactSheet: 'report/contact_sheet.png' },
    split,
    excluded,
    stats: { validFrames: validIdx.length, backgroundFilledFraction: round(filledFraction, 4), meanHullMissedByMatte: round(hullMissed / Math.max(1, validIdx.length), 4), matteEvery, poseSmoothingHz: poseSmoothing,
      rigidLandmarkErrorPx: { tracker: round(refined.medianErrorPx.before, 3), refined: round(refined.medianErrorPx.after, 3) } },
  };
  // Timings vary run to run, so they stay out of dataset.json (which is deterministic).
  writeFileSync(join(out, 'timing.json'), JSON.stringify(timing, null, 1));
  writeAtomic(datasetJson, JSON.stringify(dataset, null, 1));
  // Held-out frames beyond the training poses are scored on extrapolation: say so now, before any training.
  const poseOf = (i: number) => poses[i]!;
  const poseNote = split.val.length
    ? describePoseCoverage(poseCoverage(split.train.map(poseOf), split.val.map((i) => ({ index: i, pose: poseOf(i) }))))
    : null;
  return { dir: out, frames: n, valid: validIdx.length, excluded, msPerFrame: perFrame, resumedFrames: resumed, poseNote };
}

function round(v: number, d: number): number {
  const k = 10 ** d;
  return Math.round(v * k) / k;
}

function summarise(idx: number[]): string {
  const parts: string[] = [];
  for (let k = 0; k < idx.length;) {
    let e = k;
    while (e + 1 < idx.length && idx[e + 1] === idx[e] + 1) e++;
    parts.push(e > k ? `${idx[k]}-${idx[e]}` : `${idx[k]}`);
    k = e + 1;
  }
  return parts.join(', ');
}

/** Reads a finished dataset's metadata; throws if it is missing or incomplete. */
export function readDataset(dir: string): Record<string, unknown> & { complete: true } {
  const p = join(dir, 'dataset.json');
  if (!existsSync(p)) throw new PrepareError(`${dir} is not a finished dataset (no dataset.json): run \`dyntet-train prepare\` on it again`, 'OUT_DIR');
  const d = JSON.parse(readFileSync(p, 'utf8'));
  if (d.complete !== true || d.version !== DATASET_VERSION) throw new PrepareError(`${dir} holds an incomplete or version-${d.version} dataset: run prepare again`, 'OUT_DIR');
  return d;
}
