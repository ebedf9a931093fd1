// Videos through the ffmpeg command-line tool: raw RGB frames piped to H.264 in an MP4.
import { spawn, spawnSync } from 'node:child_process';
import { convertChannels, type Image } from '../image/index.js';
import { ReportError } from './errors.js';
import { triptych } from './images.js';

export interface VideoOptions {
  fps?: number;
  /** ffmpeg executable (default: $DYNTET_FFMPEG, else `ffmpeg` on PATH). */
  ffmpeg?: string;
  /** x264 constant rate factor (default 18: visually lossless, so artefacts in it are the model's). */
  crf?: number;
  /** Audio file to mux in (e.g. the dataset's audio.wav), trimmed to the video. */
  audio?: string;
}

function ffmpegPath(opts: VideoOptions): string {
  return opts.ffmpeg ?? process.env.DYNTET_FFMPEG ?? 'ffmpeg';
}

function missing(tool: string): ReportError {
  return new ReportError(
    `${tool} was not found: install ffmpeg (Debian/Ubuntu: \`apt-get install ffmpeg\`, macOS: \`brew install ffmpeg\`) or point DYNTET_FFMPEG at an ffmpeg binary`,
    'FFMPEG_MISSING',
  );
}

/** Fails early with the install hint when ffmpeg cannot be run. */
export function checkFfmpeg(opts: VideoOptions = {}): void {
  const tool = ffmpegPath(opts);
  const r = spawnSync(tool, ['-version'], { encoding: 'utf8' });
  if (r.error) throw missing(tool);
}

/**
 * Writes frames (all the size of the first) to an MP4 (H.264, yuv420p, playable everywhere).
 * Odd sizes are padded by one pixel, as yuv420p needs even ones.
 */
export async function writeVideo(out: string, frames: Iterable<Image> | AsyncIterable<Image>, opts: VideoOptions = {}): Promise<{ frames: number }> {
  const fps = opts.fps ?? 25;
  if (!(fps > 0)) throw new ReportError(`video fps must be positive, got ${fps}`, 'BAD_INPUT');
  const tool = ffmpegPath(opts);
  checkFfmpeg(opts);
  let proc: ReturnType<typeof spawn> | undefined;
  let stderr = '';
  let exited: Promise<number> | undefined;
  let w = 0, h = 0, count = 0;
  const write = (buf: Uint8Array) =>
    new Promise<void>((resolve, reject) => {
      const stdin = proc!.stdin!;
      if (stdin.write(buf)) resolve();
      else {
        const onDrain = () => { stdin.off('error', onErr); resolve(); };
        const onErr = (e: Error) => { stdin.off('drain', onDrain); reject(e); };
        stdin.once('drain', onDrain);
        stdin.once('error', onErr);
      }
    });
  try {
    for await (const f of frames as AsyncIterable<Image>) {
      if (!proc) {
        w = f.width;
        h = f.height;
        const args = ['-v', 'error', '-nostdin', '-y', '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s', `${w}x${h}`, '-r', String(fps), '-i', 'pipe:0'];
        if (opts.audio) args.push('-i', opts.audio, '-map', '0:v:0', '-map', '1:a:0', '-c:a', 'aac', '-shortest');
        args.push('-vf', 'pad=ceil(iw/2)*2:ceil(ih/2)*2', '-c:v', 'libx264', '-preset', 'medium', '-crf', String(opts.crf ?? 18),
          '-pix_fmt', 'yuv420p', '-movflags', '+faststart', '-threads', '2', out);
        proc = spawn(tool, args, { stdio: ['pipe', 'ignore', 'pipe'] });
        proc.stderr!.on('data', (d) => (stderr += d));
        exited = new Promise((resolve, reject) => {
          proc!.on('error', (e) => reject((e as NodeJS.ErrnoException).code === 'ENOENT' ? missing(tool) : e));
          proc!.on('close', (code) => resolve(code ?? 1));
        });
        // An early ffmpeg exit surfaces through `exited`; writes after it would only raise EPIPE.
        proc.stdin!.on('error', () => {});
      }
      if (f.width !== w || f.height !== h) throw new ReportError(`video frame ${count} is ${f.width}x${f.height}, the first was ${w}x${h}: all frames must share one size`, 'BAD_INPUT');
      await write(convertChannels(f, 3).data);
      count++;
    }
  } catch (e) {
    proc?.kill();
    await exited?.catch(() => {});
    throw e;
  }
  if (!proc) throw new ReportError('no frames to write to the video', 'BAD_INPUT');
  proc.stdin!.end();
  const code = await exited!;
  if (code !== 0) throw new ReportError(`ffmpeg failed to write ${out} (${stderr.trim().split('\n').pop() ?? `exit ${code}`})`, 'FFMPEG_FAILED');
  return { frames: count };
}

/** A real | ours | difference video from pairs of frames. */
export async function writeSideBySide(out: string, pairs: Iterable<{ real: Image; ours: Image }> | AsyncIterable<{ real: Image; ours: Image }>, opts: VideoOptions & { diffGain?: number } = {}): Promise<{ frames: number }> {
  async function* frames() {
    for await (const p of pairs as AsyncIterable<{ real: Image; ours: Image }>) yield triptych(p.real, p.ours, opts.diffGain);
  }
  return writeVideo(out, frames(), opts);
}
