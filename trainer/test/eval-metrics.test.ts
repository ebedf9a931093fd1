import { describe, expect, it } from 'vitest';
import { createImage, type Channels, type Image } from '../src/image/index.js';
import {
  applySimilarity, coefficientDistance, featheredHull, fitSimilarity, invertSimilarity, nearestFrame, pasteFace, plateOnly, warpSimilarity,
} from '../src/eval/baseline.js';
import { EvalError } from '../src/eval/errors.js';
import { composite, lmd, maskBox, meanQuality, mse, pixelRect, psnr, PSNR_CAP, ssim, ssimKernel } from '../src/eval/metrics.js';
import { describePoseCoverage, poseCoverage } from '../src/eval/pose-coverage.js';
import { poseFromEuler } from '@dyntet/player/sources';

function rng(seed: number) {
  let s = seed >>> 0;
  return () => ((s = (s * 1664525 + 1013904223) >>> 0) / 2 ** 32);
}

function noise(w: number, h: number, ch: Channels, seed: number): Image {
  const img = createImage(w, h, ch);
  const r = rng(seed);
  for (let i = 0; i < img.data.length; i++) img.data[i] = Math.floor(r() * 256);
  return img;
}

/** A smooth test picture (gradients and a disc) so SSIM behaves as on photographs. */
function picture(w: number, h: number): Image {
  const img = createImage(w, h, 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = 3 * (y * w + x);
      const inDisc = (x - w / 2) ** 2 + (y - h / 2) ** 2 < (w / 4) ** 2;
      img.data[o] = Math.round((255 * x) / w);
      img.data[o + 1] = Math.round((255 * y) / h);
      img.data[o + 2] = inDisc ? 220 : 40;
    }
  return img;
}

function addNoise(img: Image, amp: number, seed: number): Image {
  const out = createImage(img.width, img.height, img.channels);
  const r = rng(seed);
  for (let i = 0; i < img.data.length; i++) out.data[i] = Math.max(0, Math.min(255, Math.round(img.data[i] + (r() * 2 - 1) * amp)));
  return out;
}

function solid(w: number, h: number, v: number, ch: Channels = 1): Image {
  const img = createImage(w, h, ch);
  img.data.fill(v);
  return img;
}

/** SSIM straight from its definition: a full 2-D window per position, in float64. */
function ssimDirect(a: Float64Array, b: Float64Array, w: number, h: number): number {
  const k = ssimKernel();
  const C1 = (0.01 * 255) ** 2, C2 = (0.03 * 255) ** 2;
  let total = 0, n = 0;
  for (let y = 0; y + 11 <= h; y++)
    for (let x = 0; x + 11 <= w; x++) {
      let ma = 0, mb = 0;
      for (let v = 0; v < 11; v++) for (let u = 0; u < 11; u++) {
        const g = k[u] * k[v], i = (y + v) * w + x + u;
        ma += g * a[i]; mb += g * b[i];
      }
      let va = 0, vb = 0, cov = 0;
      for (let v = 0; v < 11; v++) for (let u = 0; u < 11; u++) {
        const g = k[u] * k[v], i = (y + v) * w + x + u;
        va += g * (a[i] - ma) ** 2; vb += g * (b[i] - mb) ** 2; cov += g * (a[i] - ma) * (b[i] - mb);
      }
      total += ((2 * ma * mb + C1) * (2 * cov + C2)) / ((ma * ma + mb * mb + C1) * (va + vb + C2));
      n++;
    }
  return total / n;
}

describe('PSNR', () => {
  it('matches hand-computed values', () => {
    const a = solid(2, 2, 0), b = solid(2, 2, 0);
    b.data[0] = 10; // MSE = 100 / 4 = 25
    expect(mse(a, b)).toBe(25);
    expect(psnr(a, b)).toBeCloseTo(10 * Math.log10(65025 / 25), 12); // 34.1514 dB
    const c = solid(1, 1, 0, 3), d = solid(1, 1, 0, 3);
    d.data[1] = 30; // MSE over the 3 channels = 900 / 3
    expect(psnr(c, d)).toBeCloseTo(10 * Math.log10(65025 / 300), 12);
  });

  it('is infinite for identical images and capped in averages', () => {
    const a = noise(16, 16, 3, 1);
    expect(psnr(a, a)).toBe(Infinity);
    const q = { psnr: Infinity, ssim: 1 };
    expect(meanQuality([{ full: q, head: q }]).full.psnr).toBe(PSNR_CAP);
  });

  it('ignores alpha and restricts to a box', () => {
    const a = solid(4, 4, 50, 4), b = solid(4, 4, 50, 4);
    for (let i = 3; i < b.data.length; i += 4) b.data[i] = 0; // alpha differs only
    expect(psnr(a, b)).toBe(Infinity);
    const g = solid(4, 4, 0), h = solid(4, 4, 0);
    h.data[0] = 40; // outside the box [1, 1, 3, 3]
    expect(psnr(g, h, { box: [1, 1, 3, 3] })).toBe(Infinity);
    expect(mse(g, h, { box: [0, 0, 1.2, 0.5] })).toBe(1600 / 2); // covers pixels (0,0) and (1,0)
  });

  it('gives typed errors for mismatched sizes and empty regions', () => {
    expect(() => psnr(solid(4, 4, 0), solid(5, 4, 0))).toThrow(EvalError);
    expect(() => psnr(solid(4, 4, 0), solid(4, 4, 0, 3))).toThrow(/colour channels/);
    expect(() => psnr(solid(4, 4, 0), solid(4, 4, 0), { box: [10, 10, 20, 20] })).toThrow(/does not overlap/);
    expect(() => pixelRect([0, 0, NaN, 1], 4, 4)).toThrow(EvalError);
  });
});

describe('SSIM', () => {
  it('is 1 for identical images and matches the hand value for two constant images', () => {
    const a = noise(24, 24, 3, 3);
    expect(ssim(a, a)).toBeCloseTo(1, 12);
    // Constant planes: variances and covariance vanish, SSIM = (2 mu_a mu_b + C1) / (mu_a^2 + mu_b^2 + C1).
    const C1 = 2.55 ** 2;
    expect(ssim(solid(16, 16, 100), solid(16, 16, 110))).toBeCloseTo((2 * 100 * 110 + C1) / (100 ** 2 + 110 ** 2 + C1), 6);
  });

  it('agrees with the direct 2-D definition', () => {
    const a = noise(23, 19, 1, 5), b = addNoise(a, 40, 6);
    const fa = Float64Array.from(a.data), fb = Float64Array.from(b.data);
    expect(ssim(a, b)).toBeCloseTo(ssimDirect(fa, fb, 23, 19), 5);
    const box: [number, number, number, number] = [3, 2, 20, 16];
    const crop = (img: Image) => {
      const out: number[] = [];
      for (let y = 2; y < 16; y++) for (let x = 3; x < 20; x++) out.push(img.data[y * 23 + x]);
      return Float64Array.from(out);
    };
    expect(ssim(a, b, { box })).toBeCloseTo(ssimDirect(crop(a), crop(b), 17, 14), 5);
  });

  it('is symmetric, falls with noise, and luma mode equals per-channel mode on gray pictures', () => {
    const p = picture(64, 48);
    const n1 = addNoise(p, 10, 7), n2 = addNoise(p, 40, 8);
    expect(ssim(p, n1)).toBeCloseTo(ssim(n1, p), 12);
    expect(ssim(p, n1)).toBeLessThan(1);
    expect(ssim(p, n2)).toBeLessThan(ssim(p, n1));
    expect(psnr(p, n2)).toBeLessThan(psnr(p, n1));
    const g = createImage(32, 32, 3), gn = createImage(32, 32, 3);
    const base = noise(32, 32, 1, 9), bn = addNoise(base, 30, 10);
    for (let i = 0; i < 32 * 32; i++) for (let c = 0; c < 3; c++) { g.data[3 * i + c] = base.data[i]; gn.data[3 * i + c] = bn.data[i]; }
    expect(ssim(g, gn, { mode: 'luma' })).toBeCloseTo(ssim(g, gn, { mode: 'rgb' }), 4);
  });

  it('refuses regions smaller than the window', () => {
    expect(() => ssim(solid(10, 10, 0), solid(10, 10, 0))).toThrow(/at least 11x11/);
  });
});

describe('compositing, boxes, LMD', () => {
  it('composites with gray or float coverage', () => {
    const fg = solid(2, 1, 200, 3), bg = solid(2, 1, 100, 3);
    const cov = createImage(2, 1, 1);
    cov.data.set([0, 255]);
    expect(Array.from(composite(fg, cov, bg).data)).toEqual([100, 100, 100, 200, 200, 200]);
    expect(Array.from(composite(fg, Float32Array.of(0.5, 0.25), bg).data)).toEqual([150, 150, 150, 125, 125, 125]);
    expect(() => composite(fg, Float32Array.of(1), bg)).toThrow(EvalError);
  });

  it('finds the box of a mask', () => {
    const m = createImage(8, 6, 1);
    m.data[2 * 8 + 3] = 255;
    m.data[4 * 8 + 6] = 200;
    m.data[5 * 8 + 7] = 100; // below threshold
    expect(maskBox(m)).toEqual([3, 2, 7, 5]);
    expect(maskBox(createImage(4, 4, 1))).toBeUndefined();
  });

  it('computes LMD by hand', () => {
    const a = Float32Array.of(0, 0, 0, 10, 10, 5);
    const b = Float32Array.of(3, 4, 9, 10, 10, -5); // distances 5 and 0 (z ignored)
    expect(lmd(a, b)).toBe(2.5);
    expect(lmd(a, b, [0])).toBe(5);
    expect(() => lmd(a, Float32Array.of(NaN, 0, 0, 0, 0, 0))).toThrow(/not finite/);
  });
});

describe('similarity alignment', () => {
  it('recovers a known similarity exactly', () => {
    const r = rng(11);
    const truth = { a: 1.3 * Math.cos(0.4), b: 1.3 * Math.sin(0.4), tx: 12.5, ty: -7.25 };
    const src: number[] = [], dst: number[] = [];
    for (let i = 0; i < 50; i++) {
      const x = r() * 400, y = r() * 300;
      const [u, v] = applySimilarity(truth, x, y);
      src.push(x, y, r());
      dst.push(u, v, r());
    }
    const s = fitSimilarity(src, dst);
    expect(s.a).toBeCloseTo(truth.a, 10);
    expect(s.b).toBeCloseTo(truth.b, 10);
    expect(s.tx).toBeCloseTo(truth.tx, 8);
    expect(s.ty).toBeCloseTo(truth.ty, 8);
    const inv = invertSimilarity(s);
    const [x, y] = applySimilarity(inv, ...applySimilarity(s, 33, 44));
    expect(x).toBeCloseTo(33, 9);
    expect(y).toBeCloseTo(44, 9);
  });

  it('is the least-squares fit under noise (no other similarity does better)', () => {
    const r = rng(12);
    const src: number[] = [], dst: number[] = [];
    for (let i = 0; i < 40; i++) {
      const x = r() * 100, y = r() * 100;
      src.push(x, y);
      dst.push(0.8 * x - 0.1 * y + 5 + r() * 3, 0.1 * x + 0.8 * y - 2 + r() * 3);
    }
    const cost = (s: { a: number; b: number; tx: number; ty: number }) => {
      let c = 0;
      for (let i = 0; i < 40; i++) {
        const [u, v] = applySimilarity(s, src[2 * i], src[2 * i + 1]);
        c += (u - dst[2 * i]) ** 2 + (v - dst[2 * i + 1]) ** 2;
      }
      return c;
    };
    const s = fitSimilarity(src, dst, 2);
    for (const k of ['a', 'b', 'tx', 'ty'] as const)
      for (const e of [-1e-3, 1e-3]) expect(cost({ ...s, [k]: s[k] + e })).toBeGreaterThan(cost(s));
  });

  it('warps: identity keeps the image, an integer shift moves it', () => {
    const img = noise(12, 10, 3, 13);
    expect(Array.from(warpSimilarity(img, { a: 1, b: 0, tx: 0, ty: 0 }, 12, 10).data)).toEqual(Array.from(img.data));
    const w = warpSimilarity(img, { a: 1, b: 0, tx: 2, ty: 1 }, 12, 10);
    for (const [x, y] of [[2, 1], [5, 4], [11, 9]]) for (let c = 0; c < 3; c++) expect(w.data[3 * (y * 12 + x) + c]).toBe(img.data[3 * ((y - 1) * 12 + x - 2) + c]);
  });

  it('feathers a hull with a linear ramp from its edge', () => {
    const sq: Array<[number, number]> = [[10, 10], [30, 10], [30, 30], [10, 30]];
    const { alpha } = featheredHull(sq, 40, 40, 4);
    expect(alpha[20 * 40 + 20]).toBe(1);
    expect(alpha[20 * 40 + 10]).toBeCloseTo(0.5 / 4, 6); // pixel centre 0.5 px inside the left edge
    expect(alpha[20 * 40 + 11]).toBeCloseTo(1.5 / 4, 6);
    expect(alpha[20 * 40 + 9]).toBe(0);
    expect(alpha[5 * 40 + 5]).toBe(0);
  });

  it('pastes an aligned copy of a face back onto itself without change', () => {
    const img = picture(64, 64);
    const lm = new Float32Array(478 * 3);
    const r = rng(14);
    for (let i = 0; i < 478; i++) { lm[3 * i] = 16 + r() * 32; lm[3 * i + 1] = 16 + r() * 32; }
    const res = pasteFace(img, lm, img, lm);
    expect(res.similarity.a).toBeCloseTo(1, 10);
    expect(psnr(res.output, img)).toBe(Infinity);
  });

  it('picks the nearest frame by blendshapes and pose', () => {
    const I = [1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, -50, 1];
    const f = (jaw: number, tz: number) => ({ blendshapes: [0, jaw, 0], pose: I.map((v, k) => (k === 14 ? tz : v)) });
    const cands = [f(0, -50), f(0.5, -50), f(0.52, -80)];
    expect(nearestFrame(f(0.55, -50), cands)).toBe(1);
    expect(coefficientDistance(f(0, -50), f(0, -60))).toBeCloseTo(1, 12); // 10 cm counts as 1
  });

  it('plate-only replaces exactly the head mask', () => {
    const real = solid(3, 1, 10, 3), plate = solid(3, 1, 90, 3), m = createImage(3, 1, 1);
    m.data.set([0, 255, 0]);
    expect(Array.from(plateOnly(real, plate, m).data)).toEqual([10, 10, 10, 90, 90, 90, 10, 10, 10]);
  });
});

describe('pose coverage', () => {
  const rad = Math.PI / 180;
  const pose = (yaw: number, pitch: number, roll: number) => poseFromEuler(yaw * rad, pitch * rad, roll * rad);
  // Training frames turn -10..5 degrees in yaw, -5..5 in pitch, -2..2 in roll.
  const train = [pose(-10, 0, 0), pose(5, -5, 2), pose(0, 5, -2), pose(2, 1, 0)];

  it('measures how far each held-out frame lies beyond the training range, on its worst axis', () => {
    const c = poseCoverage(train, [
      { index: 10, pose: pose(3, 0, 0) },     // inside
      { index: 11, pose: pose(11, 0, 0) },    // 6 beyond in yaw
      { index: 12, pose: pose(0, -20, 1) },   // 15 beyond in pitch
      { index: 13, pose: pose(5.5, 0, 0) },   // 0.5 beyond: under the 1 degree threshold
    ]);
    expect(c.trainRange.yaw[0]).toBeCloseTo(-10, 4);
    expect(c.trainRange.yaw[1]).toBeCloseTo(5, 4);
    expect(c.trainRange.pitch[0]).toBeCloseTo(-5, 4);
    expect(c.trainRange.roll[1]).toBeCloseTo(2, 4);
    expect(c.frames.map((f) => f.index)).toEqual([10, 11, 12, 13]);
    expect(c.frames[0].beyond).toBe(0);
    expect(c.frames[0].axis).toBeNull();
    expect(c.frames[1].beyond).toBeCloseTo(6, 4);
    expect(c.frames[1].axis).toBe('yaw');
    expect(c.frames[1].yaw).toBeCloseTo(11, 4);
    expect(c.frames[2].beyond).toBeCloseTo(15, 4);
    expect(c.frames[2].axis).toBe('pitch');
    expect(c.frames[3].beyond).toBeCloseTo(0.5, 4);
    expect(c.beyondCount).toBe(2);
    expect(c.maxBeyond).toBeCloseTo(15, 4);
    expect(c.maxAxis).toBe('pitch');
    const note = describePoseCoverage(c)!;
    expect(note).toMatch(/^2 of 4 held-out frames turn the head beyond/);
    expect(note).toMatch(/up to 15\.0 degrees in pitch; training -5\.0 to 5\.0/);
  });

  it('says nothing when every held-out frame is inside the range, and refuses an empty training set', () => {
    const c = poseCoverage(train, [{ index: 1, pose: pose(0, 0, 0) }, { index: 2, pose: pose(-9, 4, 1.5) }]);
    expect(c.beyondCount).toBe(0);
    expect(c.maxAxis).toBeNull();
    expect(describePoseCoverage(c)).toBeNull();
    expect(() => poseCoverage([], [])).toThrow(/at least one training pose/);
  });
});
