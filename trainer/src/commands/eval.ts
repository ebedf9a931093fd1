import { copyFileSync, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { type Command, UsageError } from './command.js';

const USAGE = `Usage: dyntet-train eval <dataset> --out <dir> [options]
       dyntet-train eval <fit-run>              (its dataset, its eval/ renders, <run>/eval-results)
       dyntet-train eval <dataset> --asset <avatar.dyntet> --out <dir>   (scores the exported asset)

Scores held-out frames of a prepared dataset (the last 20% by default, never trained on):
PSNR and SSIM over the full frame and over the head box, and the landmark distance (LMD)
between MediaPipe landmarks of the output and of the real frame. Always computes the 2-D
baselines beside the model on the same frames:
  nearest-frame  the training frame nearest in blendshapes and pose, aligned to the real frame
                 by the least-squares 2-D similarity of the landmarks, its feathered face hull
                 pasted into the real frame
  plate only     the background plate where the head is (no head at all)
Writes <out>/eval.json, <out>/val/<frame>_real.png and _ours.png, a side-by-side video
<out>/side_by_side.mp4 (real | ours | difference) and the report <out>/report/index.html.
Also checks the held-out head poses against the training frames' range (yaw, pitch, roll;
eval.json poseCoverage) and says so when some held-out frames lie beyond it: the model
extrapolates there, which lowers its scores whatever its quality.

Options:
  --out <dir>            where to write the results (created)
  --rendered <dir>       the model's frames to score: <dir>/<frame %06d>.png, RGBA, colour where
                         the model covers the frame and its coverage in alpha (without it, only
                         the baselines are scored)
  --asset <file>         render the held-out frames from an exported .dyntet with the reference
                         renderer (the player's math) into <out>/asset-frames and score those:
                         what ships, after export's quantisation and budget
  --face-model <file>    MediaPipe face_landmarker.task for LMD (else $DYNTET_FACE_MODEL,
                         else ~/.cache/dyntet/face_landmarker.task)
  --no-lmd               skip LMD (no browser needed)
  --no-video             skip the side-by-side video (no ffmpeg needed)
  --feather <fraction>   baseline feather width as a fraction of the face size (default 0.05)
  --ssim <rgb|luma>      SSIM on the mean of R, G, B (default) or on luma
  -h, --help             this text

Metrics: PSNR on 0-255 over R, G, B; SSIM with an 11x11 Gaussian window (sigma 1.5), valid
windows only; head box = the real frame's landmark box grown by 15% (tracking.json boxes.head);
each frame's PSNR capped at 100 dB in averages.`;

function parse(args: string[]) {
  const o: Record<string, string | boolean> = {};
  const pos: string[] = [];
  const flags = new Set(['no-lmd', 'no-video', 'quiet']);
  const known = new Set(['out', 'rendered', 'asset', 'face-model', 'no-lmd', 'no-video', 'feather', 'ssim', 'quiet', 'chromium']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      const k = eq < 0 ? a.slice(2) : a.slice(2, eq);
      if (!known.has(k)) throw new UsageError(`unknown option --${k}; see \`dyntet-train eval --help\``);
      if (flags.has(k)) o[k] = true;
      else {
        const val = eq < 0 ? args[++i] : a.slice(eq + 1);
        if (val === undefined) throw new UsageError(`--${k} needs a value`);
        o[k] = val;
      }
    } else pos.push(a);
  }
  return { o, pos };
}

export default {
  summary: 'score held-out frames (PSNR, SSIM, LMD) beside the 2-D baselines; report and video',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { o, pos } = parse(args);
    if (pos.length !== 1) throw new UsageError(`expected one dataset folder, got ${pos.length}; usage: dyntet-train eval <dataset> --out <dir>`);
    // A fit run directory stands for its dataset, its held-out renders and its eval-results/ folder.
    const runJson = join(pos[0], 'run.json');
    const runDir = existsSync(runJson) ? pos[0] : undefined;
    if (runDir) {
      const info = JSON.parse(readFileSync(runJson, 'utf8')) as { dataset?: string };
      if (!info.dataset) throw new UsageError(`${runJson} names no dataset`);
      if (o.rendered === undefined && o.asset === undefined) {
        if (!existsSync(join(pos[0], 'eval'))) throw new UsageError(`${pos[0]} has no eval/ frames yet: the run has not finished (fit writes them at its last step)`);
        o.rendered = join(pos[0], 'eval');
      }
      o.out ??= join(pos[0], 'eval-results');
      pos[0] = resolve(pos[0], info.dataset);
    }
    if (typeof o.out !== 'string') throw new UsageError('--out <dir> is required: the folder to write the results to');
    const feather = o.feather === undefined ? undefined : Number(o.feather);
    if (feather !== undefined && !(feather >= 0 && feather < 1)) throw new UsageError(`--feather must be a fraction in [0, 1), got "${o.feather}"`);
    const ssim = (o.ssim ?? 'rgb') as string;
    if (ssim !== 'rgb' && ssim !== 'luma') throw new UsageError(`--ssim must be rgb or luma, got "${ssim}"`);
    if (o.asset !== undefined) {
      if (o.rendered !== undefined) throw new UsageError('give --rendered or --asset, not both');
      const { EvalDataset } = await import('../eval/dataset.js');
      const { renderAssetFrames } = await import('../eval/asset.js');
      const ds = EvalDataset.open(pos[0]);
      o.rendered = join(o.out, 'asset-frames');
      const ms = await renderAssetFrames(ds, o.asset as string, o.rendered);
      if (o.quiet !== true) console.error(`eval: rendered ${ds.val.length} held-out frames from ${o.asset} (${ms.toFixed(0)} ms/frame, reference renderer)`);
    }
    const { runEval } = await import('../eval/run.js');
    const r = await runEval({
      dataset: pos[0], out: o.out, rendered: o.rendered as string | undefined, faceModel: o['face-model'] as string | undefined,
      lmd: o['no-lmd'] !== true, video: o['no-video'] !== true, featherFraction: feather, ssimMode: ssim, quiet: o.quiet === true,
      chromium: o.chromium as string | undefined,
    });
    console.log(r.table);
    if (r.poseNote) console.log(`eval: note: ${r.poseNote}`);
    console.log(`eval: report at ${r.report}`);
    if (runDir) {
      // The run's own report gains the metrics table (reportRunDir reads <run>/eval.json).
      copyFileSync(join(o.out, 'eval.json'), join(runDir, 'eval.json'));
      const { reportRunDir } = await import('../report/index.js');
      console.log(`eval: run report updated at ${reportRunDir(runDir)}`);
    }
    return 0;
  },
} satisfies Command;
