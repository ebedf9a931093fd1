// `dyntet-train eval` end to end on the prepared may_5s dataset: a renderer's RGBA frames scored
// with both protocols beside the baselines, eval.json, the side-by-side video and the report.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, sharedPath } from '../../e2e/support/shared.js';
import { main } from '../src/cli.js';
import { EvalDataset, pad } from '../src/eval/dataset.js';
import { EvalError } from '../src/eval/errors.js';
import { runEval } from '../src/eval/run.js';
import { createImage, decodePng, encodePng, imageToFloat } from '../src/image/index.js';

async function preparedClip(name: string): Promise<string> {
  const out = join(REPO_ROOT, 'tmp', 'datasets', name);
  if (existsSync(join(out, 'dataset.json'))) {
    try {
      EvalDataset.open(out);
      return out;
    } catch { /* incomplete: prepare again (it resumes) */ }
  }
  const { prepare } = await import('../src/prepare/prepare.js');
  await prepare({ video: sharedPath('data', 'clips', `${name}.mp4`), out, faceModel: sharedPath('data', 'models', 'face_landmarker.task'), quiet: true });
  return out;
}

const tmp = mkdtempSync(join(tmpdir(), 'dyntet-eval-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('dyntet-train eval', () => {
  let dir: string;
  let ds: EvalDataset;
  beforeAll(async () => {
    dir = await preparedClip('may_5s');
    ds = EvalDataset.open(dir);
  });

  it('scores rendered RGBA frames with both protocols beside the baselines', async () => {
    // A stand-in renderer that draws the real head exactly (colour = real frame, coverage = head
    // mask): over the real frame it must be perfect, over the plate only as good as the plate is.
    const rendered = join(tmp, 'rendered');
    mkdirSync(rendered);
    for (const v of ds.val) {
      const real = ds.image(v), mask = ds.headMask(v);
      const rgba = createImage(ds.width, ds.height, 4);
      for (let i = 0; i < mask.data.length; i++) {
        rgba.data.set(real.data.subarray(3 * i, 3 * i + 3), 4 * i);
        rgba.data[4 * i + 3] = mask.data[i];
      }
      writeFileSync(join(rendered, `${pad(v)}.png`), encodePng(rgba, { level: 1 }));
    }
    const out = join(tmp, 'out');
    const r = await runEval({ dataset: dir, out, rendered, lmd: false, quiet: true });
    console.log(r.table);
    const [overReal, overPlate, base, plate] = r.methods;
    expect(r.methods.map((m) => m.name)).toEqual(['ours (over real frame)', 'ours (over plate)', 'nearest-frame 2-D baseline', 'plate only (no head)']);
    expect(overReal.mean.full.psnr).toBe(100);
    expect(overReal.mean.head.ssim).toBeCloseTo(1, 9);
    // Over the plate, the true head is pasted back, so only pixels outside the mask differ: far
    // better than the plate alone, short of perfect.
    expect(overPlate.mean.head.psnr).toBeGreaterThan(plate.mean.head.psnr + 10);
    expect(overPlate.mean.full.psnr).toBeLessThan(100);
    expect(base.mean.head.psnr).toBeGreaterThan(26);

    const json = JSON.parse(readFileSync(r.json, 'utf8'));
    expect(json.heldOut).toEqual(ds.val);
    expect(json.methods).toHaveLength(4);
    // Held-out head poses against the training range, in eval.json and in the result.
    const cov = json.poseCoverage;
    expect(cov.frames.map((f: { index: number }) => f.index)).toEqual(ds.val);
    for (const a of ['yaw', 'pitch', 'roll']) {
      const [lo, hi] = cov.trainRange[a];
      expect(Number.isFinite(lo) && Number.isFinite(hi) && lo <= hi).toBe(true);
      for (const f of cov.frames) expect(f.beyond).toBeGreaterThanOrEqual(Math.max(0, f[a] - hi, lo - f[a]) - 1e-9);
    }
    expect(cov.beyondCount).toBe(cov.frames.filter((f: { beyond: number }) => f.beyond > cov.thresholdDeg).length);
    expect(r.poseNote === null).toBe(cov.beyondCount === 0);
    console.log(r.poseNote ?? `pose: every held-out frame within the training range (yaw ${cov.trainRange.yaw.map((x: number) => x.toFixed(1)).join('..')})`);
    const probe = JSON.parse(execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height', '-of', 'json', r.video!], { encoding: 'utf8' })).streams[0];
    expect([Number(probe.nb_read_frames), probe.width, probe.height]).toEqual([ds.val.length, 3 * ds.width, ds.height]);
    const html = readFileSync(r.report, 'utf8');
    expect(html).toContain('ours (over plate)');
    expect(html.match(/<img class="frame"/g)).toHaveLength(8);
    expect(html).toContain('href="../side_by_side.mp4"');
  });

  it('scores an exported asset through the reference renderer (--asset)', async () => {
    // The default avatar was trained on this clip: its held-out frames, rendered with the player's
    // math from the shipped asset, must land far above the plate and near its measured 25.9 dB.
    const asset = join(REPO_ROOT, 'demos', 'avatars', 'may_5s.dyntet');
    const out = join(tmp, 'asset');
    expect(await main(['eval', dir, '--asset', asset, '--out', out, '--no-lmd', '--no-video', '--quiet'])).toBe(0);
    const json = JSON.parse(readFileSync(join(out, 'eval.json'), 'utf8'));
    const byName = Object.fromEntries(json.methods.map((m: { name: string; mean: { head: { psnr: number } } }) => [m.name, m.mean.head.psnr]));
    console.log(`default avatar, held-out head-box PSNR over plate: ${byName['ours (over plate)'].toFixed(2)} dB`);
    expect(byName['ours (over plate)']).toBeGreaterThan(24);
    expect(byName['ours (over plate)']).toBeGreaterThan(byName['plate only (no head)'] + 12);
    // The scored over-plate frame is what the player shows over that plate: the reference renderer
    // compositing the plate itself must give the same pixels up to 8-bit rounding (un-premultiply,
    // then composite), except on silhouette pixels, where the renderer's antialiasing blends in the
    // neighbouring pixel's plate colour rather than its own.
    const v = ds.val[0];
    const { ReferenceRenderer } = await import('@dyntet/player/reference');
    const { coefficientTrack, loadReferenceWasm } = await import('../src/export/export.js');
    const { conditionWindow } = await import('../src/fit/data.js');
    const track = coefficientTrack(JSON.parse(readFileSync(join(dir, 'tracking.json'), 'utf8')));
    const blend = Array.from({ length: track.length / 68 }, (_, f) => track.subarray(f * 68, f * 68 + 52));
    const ref = ReferenceRenderer.open(await loadReferenceWasm(), new Uint8Array(readFileSync(asset)));
    const direct = ref.render({ window: conditionWindow(blend, v, ref.window), pose: track.slice(v * 68 + 52, v * 68 + 68), background: imageToFloat(ds.plate()) });
    ref.dispose();
    const scored = decodePng(readFileSync(join(out, 'frames', 'ours', `${pad(v)}.png`)));
    expect([direct.width, direct.height]).toEqual([scored.width, scored.height]);
    let off = 0, sum = 0;
    const values = direct.width * direct.height * 3;
    for (let i = 0; i < direct.width * direct.height; i++)
      for (let c = 0; c < 3; c++) {
        const d = Math.abs(direct.data[4 * i + c] - scored.data[3 * i + c]);
        off += +(d > 2);
        sum += d;
      }
    console.log(`asset frame ${v} over the plate, reference renderer vs eval's composite: mean |diff| ${(sum / values).toFixed(4)}, ${(100 * off / values).toFixed(3)}% of values off by more than 2`);
    expect(sum / values).toBeLessThan(0.05);
    expect(off / values).toBeLessThan(2e-3);
    // Bad assets and contradictory options are usage errors (exit code 2) with the fix named.
    expect(await main(['eval', dir, '--asset', join(tmp, 'missing.dyntet'), '--out', join(tmp, 'a2'), '--no-lmd', '--no-video'])).toBe(2);
    expect(await main(['eval', dir, '--asset', join(REPO_ROOT, 'package.json'), '--out', join(tmp, 'a3'), '--no-lmd', '--no-video'])).toBe(2);
    expect(await main(['eval', dir, '--asset', asset, '--rendered', out, '--out', join(tmp, 'a4'), '--no-lmd', '--no-video'])).toBe(2);
  }, 300_000);

  it('gives clear errors for bad input', async () => {
    await expect(runEval({ dataset: join(tmp, 'nope'), out: join(tmp, 'o2'), lmd: false, video: false })).rejects.toThrow(/not a prepared dataset.*dyntet-train prepare/);
    const partial = join(tmp, 'partial');
    mkdirSync(partial);
    writeFileSync(join(partial, `${pad(ds.val[0])}.png`), encodePng(createImage(ds.width, ds.height, 3)));
    const err = await runEval({ dataset: dir, out: join(tmp, 'o3'), rendered: partial, lmd: false, video: false, quiet: true }).catch((e) => e);
    expect(err).toBeInstanceOf(EvalError);
    expect(err.message).toMatch(/24 of 25 rendered frames are missing/);
    for (const v of ds.val) writeFileSync(join(partial, `${pad(v)}.png`), encodePng(createImage(ds.width, ds.height, 3)));
    await expect(runEval({ dataset: dir, out: join(tmp, 'o3'), rendered: partial, lmd: false, video: false, quiet: true })).rejects.toThrow(/no alpha channel.*RGBA/);
    expect(await main(['eval', dir])).toBe(2); // --out missing: a usage error, exit code 2
    expect(await main(['eval', dir, '--out', join(tmp, 'o4'), '--ssim', 'hsv'])).toBe(2);
  });
});
