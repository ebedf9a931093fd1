// The 2-D baselines on a real prepared dataset (may_5s, last 20% held out), with real tracking.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, sharedPath } from '../../e2e/support/shared.js';
import { EvalDataset } from '../src/eval/dataset.js';
import { runNearestBaseline, runPlateBaseline, trackLmd } from '../src/eval/evaluate.js';
import type { Image } from '../src/image/index.js';

/** Prepares a shared clip once into the repository's ignored tmp/ folder and reuses it after. */
export async function preparedClip(name: string): Promise<string> {
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

const fmt = (v: number | undefined, d = 2) => (v === undefined ? '-' : v.toFixed(d));

describe('baselines on may_5s held-out frames', () => {
  let ds: EvalDataset;
  beforeAll(async () => {
    ds = EvalDataset.open(await preparedClip('may_5s'));
  });

  it('nearest-frame baseline: sane head-box PSNR, SSIM and LMD', async () => {
    const outputs = new Map<number, Image>();
    const r = runNearestBaseline(ds, { onFrame: (i, o) => outputs.set(i, o) });
    const { missed } = await trackLmd(ds, r, outputs, { faceModel: sharedPath('data', 'models', 'face_landmarker.task') });
    const p = runPlateBaseline(ds);
    console.log([
      `may_5s held-out frames ${ds.val[0]}-${ds.val[ds.val.length - 1]} (${ds.val.length})`,
      'method                      full PSNR  full SSIM  head PSNR  head SSIM  LMD    LMD mouth  LMD aligned',
      ...[r, p].map((m) => `${m.name.padEnd(27)} ${fmt(m.mean.full.psnr).padStart(9)}  ${fmt(m.mean.full.ssim, 4).padStart(9)}  ${fmt(m.mean.head.psnr).padStart(9)}  ${fmt(m.mean.head.ssim, 4).padStart(9)}  ${fmt(m.lmd).padStart(5)}  ${fmt(m.lmdMouth).padStart(9)}  ${fmt(m.lmdAligned).padStart(11)}`),
      'reference (independent implementation): baseline head-box 29.9 dB, full 33.9 dB, LMD 2.43 px',
    ].join('\n'));
    expect(r.frames.map((f) => f.index)).toEqual(ds.val);
    // The source is always a training frame, never a held-out one.
    for (const f of r.frames) expect(ds.train).toContain(f.source);
    expect(missed).toEqual([]);
    expect(r.mean.head.psnr).toBeGreaterThan(26);
    expect(r.mean.head.psnr).toBeLessThan(40);
    expect(r.mean.full.psnr).toBeGreaterThan(r.mean.head.psnr);
    expect(r.mean.head.ssim).toBeGreaterThan(0.85);
    expect(r.mean.head.ssim).toBeLessThan(1);
    expect(r.lmd!).toBeGreaterThan(0.3);
    expect(r.lmd!).toBeLessThan(5);
    expect(r.lmdAligned!).toBeLessThan(5);
    // No head at all is far worse: the baseline carries real information.
    expect(p.mean.head.psnr).toBeLessThan(r.mean.head.psnr - 10);
    expect(p.mean.head.ssim).toBeLessThan(r.mean.head.ssim);
  });
});
