// Video decoding through the ffmpeg command-line tools.
import { spawnSync } from 'node:child_process';
import { PrepareError } from './errors.js';

export interface VideoInfo {
  width: number;
  height: number;
  /** Rotation in degrees from the container's display matrix (ffmpeg applies it when decoding). */
  rotation: number;
  duration: number;
  avgFps: number;
  /** True when the stream's average and nominal rates differ (phone footage). */
  variableFrameRate: boolean;
  hasAudio: boolean;
  codec: string;
}

function run(tool: string, args: string[]): { status: number; stdout: string; stderr: string } {
  const r = spawnSync(tool, args, { encoding: 'utf8', maxBuffer: 64 << 20 });
  if (r.error && (r.error as NodeJS.ErrnoException).code === 'ENOENT')
    throw new PrepareError(`${tool} was not found on PATH: install ffmpeg (Debian/Ubuntu: \`apt-get install ffmpeg\`, macOS: \`brew install ffmpeg\`) and retry`, 'FFMPEG_MISSING');
  return { status: r.status ?? 1, stdout: r.stdout ?? '', stderr: r.stderr ?? '' };
}

function rate(s: string | undefined): number {
  if (!s) return 0;
  const [a, b] = s.split('/').map(Number);
  return b ? a / b : a;
}

export function probeVideo(path: string): VideoInfo {
  const r = run('ffprobe', ['-v', 'error', '-show_streams', '-show_format', '-of', 'json', path]);
  const why = r.stderr.trim().split('\n').pop() ?? '';
  if (r.status !== 0) throw new PrepareError(`${path} is not a readable video (${why}): pass a video file such as an .mp4 or .mov`, 'NOT_A_VIDEO');
  const j = JSON.parse(r.stdout) as { streams?: Array<Record<string, unknown>>; format?: Record<string, unknown> };
  const streams = j.streams ?? [];
  const v = streams.find((s) => s.codec_type === 'video' && (s.disposition as Record<string, number> | undefined)?.attached_pic !== 1);
  if (!v) throw new PrepareError(`${path} has no video stream: pass a video of a talking person (an .mp4 or .mov)`, 'NOT_A_VIDEO');
  let rotation = 0;
  const sd = (v.side_data_list as Array<Record<string, unknown>> | undefined) ?? [];
  for (const d of sd) if (typeof d.rotation === 'number') rotation = d.rotation;
  const tags = v.tags as Record<string, string> | undefined;
  if (!rotation && tags?.rotate) rotation = Number(tags.rotate);
  const avg = rate(v.avg_frame_rate as string), nominal = rate(v.r_frame_rate as string);
  return {
    width: Number(v.width),
    height: Number(v.height),
    rotation,
    duration: Number(v.duration ?? j.format?.duration ?? 0),
    avgFps: avg,
    variableFrameRate: avg > 0 && nominal > 0 && Math.abs(avg - nominal) > 0.01 * nominal,
    hasAudio: streams.some((s) => s.codec_type === 'audio'),
    codec: String(v.codec_name),
  };
}

/**
 * Decodes to square RGB PNG frames at a constant fps: ffmpeg applies the rotation, the fps filter
 * resamples variable-rate footage onto a fixed clock, and the frame is scaled to cover size x size
 * then centre-cropped (the tracker's camera and the renderer both take a square frame).
 */
export function decodeFrames(path: string, dir: string, opts: { size: number; fps: number; maxFrames?: number }): void {
  const vf = `fps=${opts.fps},scale=${opts.size}:${opts.size}:force_original_aspect_ratio=increase:flags=bicubic,crop=${opts.size}:${opts.size},setsar=1`;
  const args = ['-v', 'error', '-nostdin', '-y', '-i', path, '-map', '0:v:0', '-vf', vf, '-pix_fmt', 'rgb24', '-threads', '2'];
  if (opts.maxFrames) args.push('-frames:v', String(opts.maxFrames));
  args.push('-start_number', '0', `${dir}/%06d.png`);
  const r = run('ffmpeg', args);
  if (r.status !== 0) throw new PrepareError(`ffmpeg could not decode ${path} (${r.stderr.trim().split('\n').pop()}): re-encode it, e.g. \`ffmpeg -i in -c:v libx264 out.mp4\``, 'NOT_A_VIDEO');
}

/** Writes the first audio track as 16 kHz mono WAV. */
export function extractAudio(path: string, wav: string, maxSeconds?: number): void {
  const args = ['-v', 'error', '-nostdin', '-y', '-i', path, '-map', '0:a:0', '-ac', '1', '-ar', '16000', '-c:a', 'pcm_s16le'];
  if (maxSeconds) args.push('-t', String(maxSeconds));
  args.push('-fflags', '+bitexact', '-flags:a', '+bitexact', wav);
  const r = run('ffmpeg', args);
  if (r.status !== 0) throw new PrepareError(`ffmpeg could not extract the audio of ${path}: ${r.stderr.trim().split('\n').pop()}`, 'NOT_A_VIDEO');
}
