import { type Command, UsageError } from './command.js';

const USAGE = `Usage: dyntet-train prepare <video> --out <dir> [options]

Turns a talking-head video into a training dataset: frames at a fixed rate, MediaPipe face
tracking (478 landmarks, 52 blendshapes, head pose), head masks, mouth/eye boxes, a background
plate, a train/validation split and a visual report (<dir>/report/index.html).

Options:
  --out <dir>            dataset folder (created; re-running resumes work already done)
  --face-model <file>    MediaPipe face_landmarker.task (else $DYNTET_FACE_MODEL,
                         else ~/.cache/dyntet/face_landmarker.task)
  --size <px>            square frame size, a multiple of 16 (default 512)
  --fps <rate>           frame rate to resample to (default 25)
  --val <fraction>       held-out validation fraction taken from the end (default 0.2)
  --min-frames <n>       fail if fewer frames with a face remain (default 25)
  --matte-every <n>      run the person segmenter on every nth frame (default 3)
  --pose-smoothing <hz>  head-pose filter cutoff at rest, Hz; 0 keeps the per-frame poses
                         (default 1.5)
  --max-frames <n>       use only the first n frames
  --quiet                no progress bar
  -h, --help             this text

Needs ffmpeg and Chromium (for MediaPipe) on the machine; works offline.`;

function parse(args: string[]) {
  const o: Record<string, string | boolean> = {};
  const pos: string[] = [];
  const flags = new Set(['quiet']);
  const known = new Set(['out', 'face-model', 'size', 'fps', 'val', 'min-frames', 'matte-every', 'max-frames', 'pose-smoothing', 'quiet', 'chromium']);
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    if (a.startsWith('--')) {
      const [k, v] = a.slice(2).split('=', 2);
      if (!known.has(k)) throw new UsageError(`unknown option --${k}; see \`dyntet-train prepare --help\``);
      if (flags.has(k)) o[k] = true;
      else {
        const val = v ?? args[++i];
        if (val === undefined) throw new UsageError(`--${k} needs a value`);
        o[k] = val;
      }
    } else pos.push(a);
  }
  return { o, pos };
}

function num(o: Record<string, string | boolean>, k: string): number | undefined {
  if (o[k] === undefined) return undefined;
  const v = Number(o[k]);
  if (!Number.isFinite(v)) throw new UsageError(`--${k} must be a number, got "${o[k]}"`);
  return v;
}

export default {
  summary: 'turn a talking-head video into a training dataset (tracking, masks, split, report)',
  usage: USAGE,
  async run(args: string[]): Promise<number> {
    const { o, pos } = parse(args);
    if (pos.length !== 1) throw new UsageError(`expected one video file, got ${pos.length}; usage: dyntet-train prepare <video> --out <dir>`);
    if (typeof o.out !== 'string') throw new UsageError('--out <dir> is required: the folder to write the dataset to');
    const { prepare } = await import('../prepare/prepare.js');
    const r = await prepare({
      video: pos[0], out: o.out, faceModel: o['face-model'] as string | undefined,
      size: num(o, 'size'), fps: num(o, 'fps'), valFraction: num(o, 'val'), minFrames: num(o, 'min-frames'),
      matteEvery: num(o, 'matte-every'), maxFrames: num(o, 'max-frames'), poseSmoothing: num(o, 'pose-smoothing'), quiet: o.quiet === true, chromium: o.chromium as string | undefined,
    });
    console.log(`prepare: ${r.valid}/${r.frames} frames tracked into ${r.dir}` + (r.excluded.length ? ` (${r.excluded.length} excluded: see dataset.json)` : ''));
    console.log(`prepare: ms/frame ${Object.entries(r.msPerFrame).map(([k, v]) => `${k} ${v}`).join(', ')}`);
    if (r.poseNote) console.log(`prepare: note: ${r.poseNote} (or a smaller --val)`);
    console.log(`prepare: report at ${r.dir}/report/index.html`);
    return 0;
  },
} satisfies Command;
