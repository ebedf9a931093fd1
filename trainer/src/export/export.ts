/**
 * `dyntet-train export`: bakes a fit run into a .dyntet asset within a byte budget, then checks it:
 * held-out frames rendered from the asset by the shared C++ reference renderer (WebAssembly build,
 * the player's ground truth) are compared with the trained model's own renders.
 */
import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { ReferenceRenderer, type ReferenceWasm } from '@dyntet/player/reference';
import { createTrainer, type ExportReport, type NativeTrainer, type Device } from '../native/index.js';
import { checkDataset, conditionWindow } from '../fit/data.js';
import { psnr } from '../fit/fit.js';
import { decodePng, encodePng, imageToFloat, rgbaImage, resize } from '../image/index.js';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..', '..');

export class ExportError extends Error {
  override name = 'ExportError';
}

export interface ExportArgs {
  run: string;
  /** Byte budget (0: none). */
  budget: number;
  /** Most PCA components of the baked deltas (0: none). */
  maxBasis: number;
  device: Device;
  /** Held-out frames to check against the trainer (spread over the validation split). */
  checkFrames: number;
  name?: string;
  attribution?: string;
}

/** PSNR of the asset's render against the trainer's (live and baked), and of the live render against the real frame. */
export interface FrameCheck { frame: number; psnrLive: number; psnrBaked: number | null; psnrRealLive: number }
export interface ExportResult { bytes: Uint8Array; report: ExportReport; checks: FrameCheck[]; minPsnr: number }

/** The WebAssembly build of the reference renderer (wasm/out, made by `npm run build:wasm`). */
export async function loadReferenceWasm(): Promise<ReferenceWasm> {
  const js = join(REPO_ROOT, 'wasm', 'out', 'dyntet_reference.mjs');
  const bin = join(REPO_ROOT, 'wasm', 'out', 'dyntet_reference.wasm');
  if (!existsSync(js) || !existsSync(bin)) throw new ExportError(`the reference renderer is not built (${js}): run \`npm run build:wasm\``);
  const factory = (await import(pathToFileURL(js).href)).default as (o: { wasmBinary: Uint8Array }) => Promise<ReferenceWasm>;
  return factory({ wasmBinary: new Uint8Array(readFileSync(bin)) });
}

/** The clip's 68 coefficients per frame: blendshapes and pose, invalid frames filled from the nearest valid one. */
export function coefficientTrack(tracking: { frames: { valid: boolean; blendshapes?: number[]; pose?: number[] }[] }): Float32Array {
  const frames = tracking.frames;
  const valid = frames.map((f, i) => (f.valid && f.blendshapes?.length === 52 && f.pose?.length === 16 ? i : -1)).filter((i) => i >= 0);
  if (valid.length === 0) throw new ExportError('the dataset has no tracked frame to build a coefficient track from');
  const out = new Float32Array(frames.length * 68);
  let vi = 0;
  for (let i = 0; i < frames.length; i++) {
    while (vi + 1 < valid.length && Math.abs(valid[vi + 1] - i) <= Math.abs(valid[vi] - i)) vi++;
    const f = frames[valid[vi]];
    out.set(f.blendshapes!, i * 68);
    out.set(f.pose!, i * 68 + 52);
  }
  return out;
}

function loadRun(run: string, device: Device): { trainer: NativeTrainer; runInfo: Record<string, any> } {
  const runJson = join(run, 'run.json'), ckpt = join(run, 'checkpoint.bin');
  if (!existsSync(runJson) || !existsSync(ckpt)) throw new ExportError(`${run} is not a fit run directory (run.json and checkpoint.bin are needed): run \`dyntet-train fit\` first`);
  const runInfo = JSON.parse(readFileSync(runJson, 'utf8'));
  const trainer = createTrainer(runInfo.model ?? {}, { device });
  trainer.loadCheckpoint(new Uint8Array(readFileSync(ckpt)));
  return { trainer, runInfo };
}

export async function exportRun(a: ExportArgs): Promise<ExportResult> {
  const { trainer, runInfo } = loadRun(a.run, a.device);
  const dataset = resolve(a.run, runInfo.dataset);
  if (!existsSync(dataset)) throw new ExportError(`the run's dataset ${runInfo.dataset} is not there any more: the export needs its coefficient track and plate`);
  const { meta, tracking } = checkDataset(dataset);
  const cfg = trainer.config();
  const S = cfg.width;
  const track = coefficientTrack(tracking);
  let plateImg = decodePng(readFileSync(join(dataset, 'background.png')));
  if (plateImg.width !== S || plateImg.height !== cfg.height) plateImg = resize(plateImg, S, cfg.height);
  const clipName = basename(resolve(dataset)).replace(/[^\w.-]+/g, '_') || 'clip';
  const extra = [`"source":${JSON.stringify({ dataset: basename(resolve(dataset)), video: meta.source?.file ?? null, frames: tracking.frames.length, fps: meta.fps })}`,
    `"training":${JSON.stringify({ steps: trainer.steps, size: S })}`];
  if (a.attribution) extra.push(`"attribution":${JSON.stringify(a.attribution)}`);
  const { bytes, report } = trainer.exportAsset({
    name: a.name ?? clipName, extraJson: extra.join(','), budgetBytes: a.budget, maxBasis: a.maxBasis,
    clips: [{ name: clipName, fps: meta.fps, coefficients: track, bake: a.maxBasis > 0 }],
    plate: { encoding: 1, width: plateImg.width, height: plateImg.height, bytes: encodePng(plateImg) },
  });

  // The check: the asset through the reference renderer against the trainer, over the plate.
  const wasm = await loadReferenceWasm();
  const ref = ReferenceRenderer.open(wasm, bytes);
  const checks: FrameCheck[] = [];
  try {
    const bg = imageToFloat(plateImg);
    const blend: Float32Array[] = [];
    for (let f = 0; f < tracking.frames.length; f++) blend.push(track.subarray(f * 68, f * 68 + 52));
    const val: number[] = meta.split.val;
    const picks = a.checkFrames <= 0 ? [] : Array.from({ length: Math.min(a.checkFrames, val.length) }, (_, k) => val[Math.floor((k * val.length) / Math.min(a.checkFrames, val.length))]);
    const deltas = report.basis > 0 ? await bakedDeltas(bytes, clipName, ref.activeCount) : undefined;
    for (const f of picks) {
      const window = conditionWindow(blend, f, cfg.cond_window);
      const pose = track.subarray(f * 68 + 52, f * 68 + 68);
      const want = trainer.render({ pose, window, background: bg }).rgb;
      const toFloat = (img: { data: Uint8ClampedArray }) => imageToFloat(rgbaImage(img.data, S, cfg.height));
      // The trainer's float output rounded to 8 bits as the reference's is, so both carry the same quantisation.
      const want8 = want.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 255) / 255);
      const liveImg = toFloat(ref.render({ window, pose, background: bg }));
      const live = psnr(liveImg, want8);
      let real = decodePng(readFileSync(join(dataset, 'frames', `${String(f).padStart(6, '0')}.png`)));
      if (real.width !== S || real.height !== cfg.height) real = resize(real, S, cfg.height);
      const realRgb = imageToFloat(real);
      const baked = deltas ? psnr(toFloat(ref.render({ window, pose, background: bg, baked: deltas.subarray(f * ref.activeCount * 4, (f + 1) * ref.activeCount * 4) })), want8) : null;
      checks.push({ frame: f, psnrLive: live, psnrBaked: baked, psnrRealLive: psnr(liveImg, realRgb) });
    }
  } finally {
    ref.dispose();
  }
  const all = checks.flatMap((c) => [c.psnrLive, ...(c.psnrBaked === null ? [] : [c.psnrBaked])]);
  return { bytes, report, checks, minPsnr: all.length ? Math.min(...all) : NaN };
}

/** Every frame's baked deltas of one clip, expanded by the player's decoder (WebAssembly, as in a browser). */
async function bakedDeltas(bytes: Uint8Array, clip: string, active: number): Promise<Float32Array> {
  const { decodeAsset } = await import('@dyntet/player');
  const b = (await decodeAsset(bytes)).baked.find((x) => x.clip === clip);
  if (!b) throw new ExportError(`the exported asset has no baked deltas for clip ${clip}`);
  if (b.deltas.length !== b.frames * active * 4) throw new ExportError('baked deltas do not match the active-vertex count');
  return b.deltas;
}
