// prepare on bad and awkward input: each case fails with a typed, actionable message or is handled.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { sharedPath } from '../../e2e/support/shared.js';
import { PrepareError } from '../src/prepare/errors.js';
import { poseAngles } from '../src/prepare/geometry.js';
import { prepare, type FrameRecord } from '../src/prepare/prepare.js';

const tmp = mkdtempSync(join(tmpdir(), 'dyntet-prepare-bad-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const model = sharedPath('data', 'models', 'face_landmarker.task');
const clip = sharedPath('data', 'clips', 'may_5s.mp4');

function ffmpeg(...args: string[]): void {
  execFileSync('ffmpeg', ['-v', 'error', '-nostdin', '-y', ...args]);
}

async function failsWith(p: Promise<unknown>, code: string, text: RegExp): Promise<void> {
  const err = await p.then(() => undefined, (e: unknown) => e);
  expect(err).toBeInstanceOf(PrepareError);
  expect((err as PrepareError).code).toBe(code);
  expect((err as Error).message).toMatch(text);
}

const frames = (dir: string): FrameRecord[] => JSON.parse(readFileSync(join(dir, 'tracking.json'), 'utf8')).frames;

describe('prepare: bad input', () => {
  it('rejects a file that is not a video', async () => {
    const f = join(tmp, 'notes.mp4');
    writeFileSync(f, 'this is not a video\n');
    const out = join(tmp, 'nv');
    await failsWith(prepare({ video: f, out, faceModel: model, quiet: true }), 'NOT_A_VIDEO', /not a readable video.*pass a video file/);
    expect(existsSync(join(out, 'dataset.json'))).toBe(false);
    await failsWith(prepare({ video: join(tmp, 'missing.mp4'), out, faceModel: model, quiet: true }), 'NOT_A_VIDEO', /video not found/);
  });

  it('rejects a missing or wrong model file and says where to get one', async () => {
    await failsWith(prepare({ video: clip, out: join(tmp, 'nm'), faceModel: join(tmp, 'nope.task'), quiet: true }), 'MODEL_MISSING', /face model not found.*--face-model.*DYNTET_FACE_MODEL/);
    const fake = join(tmp, 'fake.task');
    writeFileSync(fake, 'x'.repeat(100));
    await failsWith(prepare({ video: clip, out: join(tmp, 'nm'), faceModel: fake, quiet: true }), 'MODEL_MISSING', /not a MediaPipe .task bundle/);
  });

  it('rejects a very short clip without leaving a dataset', async () => {
    const f = join(tmp, 'short.mp4');
    ffmpeg('-i', clip, '-t', '0.4', f);
    const out = join(tmp, 'short');
    await failsWith(prepare({ video: f, out, faceModel: model, quiet: true }), 'TOO_SHORT', /too short: 10 frames.*at least 25/);
    expect(existsSync(join(out, 'dataset.json'))).toBe(false);
  });

  it('excludes and lists frames without a face, and fails clearly when too few remain', async () => {
    const f = join(tmp, 'noface.mp4');
    // 0.6 s of black, then 1.2 s of the clip.
    ffmpeg('-f', 'lavfi', '-i', 'color=black:s=512x512:r=25:d=0.6', '-i', clip,
      '-filter_complex', '[1:v]trim=duration=1.2,setpts=PTS-STARTPTS[b];[0:v][b]concat=n=2:v=1[v]', '-map', '[v]', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', f);
    const out = join(tmp, 'noface');
    const r = await prepare({ video: f, out, faceModel: model, quiet: true, minFrames: 20 });
    expect(r.frames).toBe(45);
    expect(r.excluded.map((e) => e.index)).toEqual(Array.from({ length: 15 }, (_, i) => i));
    expect(r.excluded[0].reason).toBe('no face found');
    const d = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    expect(d.split.train.concat(d.split.val)).toEqual(Array.from({ length: 30 }, (_, i) => 15 + i));
    // Same input needing more faces: the cached tracking is reused and the run fails, unmarked.
    await failsWith(prepare({ video: f, out, faceModel: model, quiet: true, minFrames: 40 }), 'TOO_FEW_FACES', /found in only 30 of 45 frames.*without a face: 0-14/);
    expect(existsSync(join(out, 'dataset.json'))).toBe(false);
  });

  it('follows the largest face when two are in view', async () => {
    const f = join(tmp, 'two.mp4');
    // A small second face in the top-left corner.
    ffmpeg('-i', clip, '-filter_complex', '[0:v]split[a][b];[b]scale=176:176[s];[a][s]overlay=0:0,trim=duration=1', '-an', '-c:v', 'libx264', '-pix_fmt', 'yuv420p', f);
    const out = join(tmp, 'two');
    const r = await prepare({ video: f, out, faceModel: model, quiet: true, minFrames: 20 });
    expect(r.valid).toBe(25);
    const fs = frames(out);
    expect(fs.some((x) => x.faces === 2)).toBe(true);
    for (const x of fs) {
      // The small face sits inside [0, 176)^2; the main face is about 300 px wide around x = 256.
      const [x0, , x1] = x.boxes!.head;
      expect(x1 - x0).toBeGreaterThan(200);
      expect((x0 + x1) / 2).toBeGreaterThan(200);
    }
  });

  it('handles a rotated, odd-sized, variable-frame-rate phone video', async () => {
    const sideways = join(tmp, 'sideways.mp4'), f = join(tmp, 'phone.mp4');
    // Stored sideways (turned a quarter anticlockwise) with a display rotation as phones write it
    // (-90), 333x517 pixels, every fifth frame dropped so the timestamps are irregular.
    ffmpeg('-i', clip, '-vf', "trim=duration=1.6,select='not(eq(mod(n\\,5)\\,2))',scale=517:333,transpose=2", '-vsync', 'vfr',
      '-c:v', 'libx264', '-pix_fmt', 'yuv444p', '-an', sideways);
    ffmpeg('-i', sideways, '-c', 'copy', '-metadata:s:v:0', 'rotate=270', f);
    const out = join(tmp, 'phone');
    const r = await prepare({ video: f, out, faceModel: model, quiet: true, minFrames: 20 });
    const d = JSON.parse(readFileSync(join(out, 'dataset.json'), 'utf8'));
    expect(Math.abs(d.source.rotation)).toBe(90);
    expect(d.source.variableFrameRate).toBe(true);
    expect([d.width, d.height]).toEqual([512, 512]);
    expect(r.frames).toBeGreaterThanOrEqual(38);
    expect(r.valid).toBe(r.frames);
    // Upright after decoding: the head's roll stays small.
    for (const x of frames(out)) expect(Math.abs(poseAngles(x.pose!)[2])).toBeLessThan(25);
  });

  it('rejects bad options', async () => {
    await failsWith(prepare({ video: clip, out: join(tmp, 'o'), faceModel: model, size: 500 }), 'BAD_OPTION', /multiple of 16/);
    await failsWith(prepare({ video: clip, out: join(tmp, 'o'), faceModel: model, poseSmoothing: -1 }), 'BAD_OPTION', /pose-smoothing/);
  });
});
