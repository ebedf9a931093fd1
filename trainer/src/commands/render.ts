import { existsSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { UsageError, type Command } from './command.js';
import { coefficientTrack, ExportError, loadReferenceWasm } from '../export/export.js';
import { conditionWindow } from '../fit/data.js';
import { convertChannels, createImage, decodePng, floatToImage, imageToFloat, rgbaImage, resize, type Image } from '../image/index.js';
import { createTrainer } from '../native/index.js';
import { Progress } from '../progress.js';
import { checkFfmpeg, writeVideo } from '../report/index.js';

const usage = `Usage: dyntet-train render <run-dir | avatar.dyntet> --out <video.mp4> [options]

Renders a coefficient track offline to an MP4: from an exported asset with the reference renderer
(the player's math, on the CPU), or from a fit run's checkpoint with the trainer (CPU or CUDA).

Options:
  --out <file>        the video to write (H.264)
  --coeffs <file>     the track: a dataset's tracking.json, or {"fps", "frames": [{"blendshapes": [52],
                      "pose": [16]}]}; default: the asset's first clip, or the run's training clip
  --audio <file>      audio to mux in (e.g. a dataset's audio.wav), trimmed to the video
  --device cpu|cuda   backend for a run directory (default cpu)
  --baked             asset only: use its baked per-frame deltas (its own clip only)
  --frames <n>        render only the first n frames
  --black             render over black instead of the plate
  --quiet             no progress bar`;

interface Track { fps: number; coefficients: Float32Array }

/** A coefficient track file (a dataset's tracking.json or a plain {fps, frames}) as frames x 68. */
export function readTrack(path: string): Track {
  if (!existsSync(path)) throw new UsageError(`track ${path} not found`);
  let j: any;
  try { j = JSON.parse(readFileSync(path, 'utf8')); } catch (e) { throw new UsageError(`track ${path} is not JSON: ${(e as Error).message}`); }
  if (!Array.isArray(j?.frames) || j.frames.length === 0) throw new UsageError(`track ${path} needs a non-empty "frames" array`);
  const fps = Number(j.fps ?? 25);
  if (!(fps > 0 && fps <= 240)) throw new UsageError(`track ${path}: fps must be in (0, 240], got ${j.fps}`);
  const frames = j.frames.map((f: any, i: number) => {
    const ok = Array.isArray(f.blendshapes) && f.blendshapes.length === 52 && Array.isArray(f.pose) && f.pose.length === 16 &&
      [...f.blendshapes, ...f.pose].every((x: unknown) => typeof x === 'number' && Number.isFinite(x));
    if (!ok && f.valid !== false) throw new UsageError(`track ${path}: frame ${i} needs 52 finite blendshapes and a 16-value pose`);
    return { valid: ok, blendshapes: f.blendshapes, pose: f.pose };
  });
  try {
    return { fps, coefficients: coefficientTrack({ frames }) };
  } catch (e) {
    if (e instanceof ExportError) throw new UsageError(`track ${path}: ${e.message}`);
    throw e;
  }
}

export default {
  summary: 'render a coefficient track to a video from an asset or a run',
  usage,
  async run(args: string[]): Promise<number> {
    let parsed;
    try {
      parsed = parseArgs({ args, allowPositionals: true, options: {
        out: { type: 'string' }, coeffs: { type: 'string' }, audio: { type: 'string' }, device: { type: 'string', default: 'cpu' },
        baked: { type: 'boolean' }, frames: { type: 'string' }, black: { type: 'boolean' }, quiet: { type: 'boolean' } } });
    } catch (e) { throw new UsageError((e as Error).message); }
    const { values: v, positionals } = parsed;
    if (positionals.length !== 1) throw new UsageError('give one run directory or .dyntet asset');
    if (!v.out) throw new UsageError('--out <video.mp4> is required');
    if (v.device !== 'cpu' && v.device !== 'cuda') throw new UsageError(`--device must be cpu or cuda, got ${v.device}`);
    if (v.audio && !existsSync(v.audio)) throw new UsageError(`audio ${v.audio} not found`);
    const limit = v.frames !== undefined ? Number(v.frames) : Infinity;
    if (v.frames !== undefined && !(Number.isInteger(limit) && limit > 0)) throw new UsageError(`--frames must be a positive integer, got ${v.frames}`);
    const src = positionals[0];
    if (!existsSync(src)) throw new UsageError(`${src} not found`);
    checkFfmpeg();
    let track: Track | undefined = v.coeffs ? readTrack(v.coeffs) : undefined;
    let frames: AsyncGenerator<Image> | Generator<Image>;
    let count = 0;
    let progress: Progress | undefined;

    if (statSync(src).isDirectory()) {
      if (v.baked) throw new UsageError('--baked applies to an asset, not a run directory');
      const runJson = join(src, 'run.json'), ckpt = join(src, 'checkpoint.bin');
      if (!existsSync(runJson) || !existsSync(ckpt)) throw new UsageError(`${src} is not a fit run (run.json and checkpoint.bin are needed)`);
      const info = JSON.parse(readFileSync(runJson, 'utf8'));
      const t = createTrainer(info.model ?? {}, { device: v.device });
      t.loadCheckpoint(new Uint8Array(readFileSync(ckpt)));
      const cfg = t.config();
      const dataset = resolve(src, info.dataset);
      if (!track) {
        if (!existsSync(join(dataset, 'tracking.json'))) throw new UsageError(`the run's dataset ${dataset} is gone: give --coeffs`);
        track = readTrack(join(dataset, 'tracking.json'));
      }
      let bg: Float32Array | undefined;
      if (!v.black && existsSync(join(dataset, 'background.png'))) {
        let p = decodePng(readFileSync(join(dataset, 'background.png')));
        if (p.width !== cfg.width || p.height !== cfg.height) p = resize(p, cfg.width, cfg.height);
        bg = imageToFloat(p);
      }
      const tr = track;
      count = Math.min(limit, tr.coefficients.length / 68);
      progress = v.quiet ? undefined : new Progress('render', count, { unit: 'frames' });
      const blend = Array.from({ length: tr.coefficients.length / 68 }, (_, f) => tr.coefficients.subarray(f * 68, f * 68 + 52));
      frames = (function* () {
        for (let f = 0; f < count; f++) {
          const r = t.render({ pose: tr.coefficients.slice(f * 68 + 52, f * 68 + 68), window: conditionWindow(blend, f, cfg.cond_window), background: bg });
          progress?.update(f + 1);
          yield floatToImage(r.rgb, r.width, r.height);
        }
      })();
    } else {
      const { decodeAsset } = await import('@dyntet/player');
      const { ReferenceRenderer } = await import('@dyntet/player/reference');
      const bytes = new Uint8Array(readFileSync(src));
      let asset;
      try { asset = await decodeAsset(bytes); } catch (e) { throw new UsageError(`${src}: ${(e as Error).message}`); }
      const clip = asset.clips[0];
      let baked: Float32Array | undefined;
      if (v.baked) {
        if (v.coeffs) throw new UsageError('--baked plays the asset\'s own clip: leave out --coeffs');
        const b = clip && asset.baked.find((x) => x.clip === clip.name);
        if (!b) throw new UsageError(`${src} has no baked deltas: export it with --basis above 0`);
        baked = b.deltas;
      }
      if (!track) {
        if (!clip) throw new UsageError(`${src} holds no clip: give --coeffs`);
        track = { fps: clip.fps, coefficients: clip.coefficients };
      }
      const ref = ReferenceRenderer.open(await loadReferenceWasm(), bytes);
      let bg: Float32Array | undefined;
      if (!v.black && asset.plate) {
        const p = asset.plate;
        let img: Image;
        if (p.encoding === 'png') img = decodePng(p.bytes);
        else if (p.encoding === 'rgba8') { img = createImage(p.width, p.height, 4); img.data.set(p.bytes); }
        else throw new UsageError(`${src}: its ${p.encoding} plate cannot be decoded here: render with --black`);
        if (img.width !== ref.width || img.height !== ref.height) img = resize(img, ref.width, ref.height);
        bg = imageToFloat(img);
      }
      const tr = track;
      const n = tr.coefficients.length / 68;
      count = Math.min(limit, n);
      progress = v.quiet ? undefined : new Progress('render', count, { unit: 'frames' });
      const blend = Array.from({ length: n }, (_, f) => tr.coefficients.subarray(f * 68, f * 68 + 52));
      const A = ref.activeCount * 4;
      frames = (function* () {
        try {
          for (let f = 0; f < count; f++) {
            const img = ref.render({ window: conditionWindow(blend, f, ref.window), pose: tr.coefficients.slice(f * 68 + 52, f * 68 + 68),
              background: bg, baked: baked?.subarray(f * A, (f + 1) * A) });
            progress?.update(f + 1);
            yield convertChannels(rgbaImage(img.data, img.width, img.height), 3);
          }
        } finally {
          ref.dispose();
        }
      })();
    }
    const r = await writeVideo(v.out, frames, { fps: track.fps, audio: v.audio });
    progress?.finish();
    console.log(`wrote ${v.out}: ${r.frames} frames at ${track.fps} fps`);
    return 0;
  },
} satisfies Command;
