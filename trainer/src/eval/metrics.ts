// Image quality metrics on 8-bit images: PSNR, SSIM, compositing and landmark distance.
//
// Conventions (the numbers in reports and benchmarks depend on them):
// - Values are compared on the 0-255 scale of the 8-bit images, over the colour channels
//   (RGB; an alpha channel is ignored; gray images are compared as they are).
// - PSNR = 10 log10(255^2 / MSE), the MSE taken over every pixel and colour channel of the region.
//   Identical images give Infinity; averages over frames cap each frame at PSNR_CAP.
// - SSIM is Wang et al. 2004: an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03, L = 255,
//   "valid" windows only (no padding: every window lies inside the region, as in the reference
//   MATLAB code and pytorch-msssim). Mode 'rgb' (the default) averages the mean SSIM of the R, G
//   and B planes; mode 'luma' computes it once on BT.601 luma (0.299 R + 0.587 G + 0.114 B).
// - A region is a box [x0, y0, x1, y1] in pixel coordinates (pixel i spans [i, i + 1)); it covers
//   the smallest whole-pixel rectangle that contains it, clipped to the image.
import { createImage, type Image } from '../image/index.js';
import { EvalError } from './errors.js';

export type Box = readonly [number, number, number, number];

/** A whole-pixel rectangle: columns [x, x + w), rows [y, y + h). */
export interface PixelRect {
  x: number;
  y: number;
  w: number;
  h: number;
}

export const PSNR_CAP = 100;
export const SSIM_WINDOW = 11;
export const SSIM_SIGMA = 1.5;

export type SsimMode = 'rgb' | 'luma';

export interface RegionOptions {
  /** Restrict the metric to this box (pixels); the whole image when absent. */
  box?: Box;
}

export interface SsimOptions extends RegionOptions {
  mode?: SsimMode;
}

/** The whole-pixel rectangle covering a box, clipped to a width x height image. */
export function pixelRect(box: Box | undefined, width: number, height: number): PixelRect {
  if (!box) return { x: 0, y: 0, w: width, h: height };
  if (box.length !== 4 || !box.every(Number.isFinite))
    throw new EvalError(`a region must be a box [x0, y0, x1, y1] of finite pixel coordinates, got [${box.join(', ')}]`, 'BAD_REGION');
  const x0 = Math.max(0, Math.floor(box[0])), y0 = Math.max(0, Math.floor(box[1]));
  const x1 = Math.min(width, Math.ceil(box[2])), y1 = Math.min(height, Math.ceil(box[3]));
  if (x1 <= x0 || y1 <= y0)
    throw new EvalError(`the region [${box.join(', ')}] does not overlap the ${width}x${height} image: check the box's coordinates`, 'BAD_REGION');
  return { x: x0, y: y0, w: x1 - x0, h: y1 - y0 };
}

function colourChannels(img: Image): number {
  return img.channels === 4 ? 3 : img.channels;
}

function checkPair(a: Image, b: Image, what: string): void {
  if (a.width !== b.width || a.height !== b.height)
    throw new EvalError(`${what}: images differ in size (${a.width}x${a.height} vs ${b.width}x${b.height}); render at the dataset's frame size`, 'SIZE_MISMATCH');
  if (colourChannels(a) !== colourChannels(b))
    throw new EvalError(`${what}: images differ in colour channels (${a.channels} vs ${b.channels}); convert both to RGB first`, 'SIZE_MISMATCH');
  if (a.data.length !== a.width * a.height * a.channels || b.data.length !== b.width * b.height * b.channels)
    throw new EvalError(`${what}: image data length does not match width x height x channels`, 'BAD_INPUT');
}

/** Mean squared error on the 0-255 scale over the colour channels of a region. */
export function mse(a: Image, b: Image, opts: RegionOptions = {}): number {
  checkPair(a, b, 'mse');
  const r = pixelRect(opts.box, a.width, a.height);
  const ca = a.channels, cb = b.channels, nc = colourChannels(a);
  const da = a.data, db = b.data;
  let sum = 0;
  for (let y = r.y; y < r.y + r.h; y++) {
    let ia = (y * a.width + r.x) * ca, ib = (y * b.width + r.x) * cb;
    for (let x = 0; x < r.w; x++, ia += ca, ib += cb)
      for (let c = 0; c < nc; c++) {
        const d = da[ia + c] - db[ib + c];
        sum += d * d;
      }
  }
  return sum / (r.w * r.h * nc);
}

/** PSNR in dB (Infinity for identical regions). */
export function psnr(a: Image, b: Image, opts: RegionOptions = {}): number {
  return psnrFromMse(mse(a, b, opts));
}

export function psnrFromMse(m: number): number {
  return m === 0 ? Infinity : 10 * Math.log10((255 * 255) / m);
}

let kernelCache: Float64Array | undefined;
/** The normalised 1-D Gaussian whose outer product is SSIM's 11x11 window. */
export function ssimKernel(): Float64Array {
  if (kernelCache) return kernelCache;
  const k = new Float64Array(SSIM_WINDOW);
  const c = (SSIM_WINDOW - 1) / 2;
  let s = 0;
  for (let i = 0; i < SSIM_WINDOW; i++) s += k[i] = Math.exp(-((i - c) ** 2) / (2 * SSIM_SIGMA * SSIM_SIGMA));
  for (let i = 0; i < SSIM_WINDOW; i++) k[i] /= s;
  return (kernelCache = k);
}

function plane(img: Image, r: PixelRect, channel: number | 'luma'): Float32Array {
  const out = new Float32Array(r.w * r.h);
  const ch = img.channels, d = img.data;
  let o = 0;
  for (let y = r.y; y < r.y + r.h; y++) {
    let i = (y * img.width + r.x) * ch;
    if (channel === 'luma' && ch >= 3) for (let x = 0; x < r.w; x++, i += ch) out[o++] = 0.299 * d[i] + 0.587 * d[i + 1] + 0.114 * d[i + 2];
    else {
      const c = channel === 'luma' ? 0 : channel;
      for (let x = 0; x < r.w; x++, i += ch) out[o++] = d[i + c];
    }
  }
  return out;
}

/** Mean SSIM of two planes of w x h (both at least 11 x 11), valid windows only. */
export function ssimPlane(x: Float32Array, y: Float32Array, w: number, h: number): number {
  const K = SSIM_WINDOW, k = ssimKernel();
  const ow = w - K + 1, oh = h - K + 1;
  // Horizontal pass of the five moments, then the vertical pass fused with the SSIM map.
  const mx = new Float32Array(h * ow), my = new Float32Array(h * ow);
  const sxx = new Float32Array(h * ow), syy = new Float32Array(h * ow), sxy = new Float32Array(h * ow);
  for (let row = 0; row < h; row++) {
    const base = row * w, ob = row * ow;
    for (let c = 0; c < ow; c++) {
      let a = 0, b = 0, aa = 0, bb = 0, ab = 0;
      for (let t = 0; t < K; t++) {
        const wt = k[t], p = x[base + c + t], q = y[base + c + t];
        a += wt * p;
        b += wt * q;
        aa += wt * p * p;
        bb += wt * q * q;
        ab += wt * p * q;
      }
      mx[ob + c] = a;
      my[ob + c] = b;
      sxx[ob + c] = aa;
      syy[ob + c] = bb;
      sxy[ob + c] = ab;
    }
  }
  const C1 = (0.01 * 255) ** 2, C2 = (0.03 * 255) ** 2;
  let total = 0;
  for (let row = 0; row < oh; row++)
    for (let c = 0; c < ow; c++) {
      let a = 0, b = 0, aa = 0, bb = 0, ab = 0;
      for (let t = 0, i = row * ow + c; t < K; t++, i += ow) {
        const wt = k[t];
        a += wt * mx[i];
        b += wt * my[i];
        aa += wt * sxx[i];
        bb += wt * syy[i];
        ab += wt * sxy[i];
      }
      const va = aa - a * a, vb = bb - b * b, cov = ab - a * b;
      total += ((2 * a * b + C1) * (2 * cov + C2)) / ((a * a + b * b + C1) * (va + vb + C2));
    }
  return total / (ow * oh);
}

/** Mean SSIM over a region (see the conventions at the top of this file). */
export function ssim(a: Image, b: Image, opts: SsimOptions = {}): number {
  checkPair(a, b, 'ssim');
  const r = pixelRect(opts.box, a.width, a.height);
  if (r.w < SSIM_WINDOW || r.h < SSIM_WINDOW)
    throw new EvalError(`SSIM needs a region of at least ${SSIM_WINDOW}x${SSIM_WINDOW} pixels, got ${r.w}x${r.h}: use a larger box`, 'BAD_REGION');
  const mode = opts.mode ?? 'rgb';
  if (mode !== 'rgb' && mode !== 'luma') throw new EvalError(`SSIM mode must be 'rgb' or 'luma', got '${mode}'`, 'BAD_INPUT');
  const nc = colourChannels(a);
  if (mode === 'luma' || nc === 1) return ssimPlane(plane(a, r, 'luma'), plane(b, r, 'luma'), r.w, r.h);
  let s = 0;
  for (let c = 0; c < nc; c++) s += ssimPlane(plane(a, r, c), plane(b, r, c), r.w, r.h);
  return s / nc;
}

/**
 * Composites fg over bg with a per-pixel coverage: a gray image (0-255) or floats in [0, 1].
 * out = round(alpha * fg + (1 - alpha) * bg), per colour channel; the result is RGB.
 */
export function composite(fg: Image, coverage: Image | Float32Array, bg: Image): Image {
  checkPair(fg, bg, 'composite');
  if (colourChannels(fg) !== 3) throw new EvalError(`composite needs RGB images, got ${fg.channels} channels`, 'BAD_INPUT');
  const n = fg.width * fg.height;
  let alpha: (i: number) => number;
  if (coverage instanceof Float32Array) {
    if (coverage.length !== n) throw new EvalError(`coverage has ${coverage.length} values, expected ${n} (${fg.width}x${fg.height})`, 'SIZE_MISMATCH');
    alpha = (i) => Math.min(1, Math.max(0, coverage[i]));
  } else {
    if (coverage.width !== fg.width || coverage.height !== fg.height || coverage.channels !== 1)
      throw new EvalError(`coverage must be a ${fg.width}x${fg.height} gray image, got ${coverage.width}x${coverage.height}x${coverage.channels}`, 'SIZE_MISMATCH');
    alpha = (i) => coverage.data[i] / 255;
  }
  const out = createImage(fg.width, fg.height, 3);
  const cf = fg.channels, cb = bg.channels;
  for (let i = 0; i < n; i++) {
    const t = alpha(i);
    for (let c = 0; c < 3; c++) out.data[3 * i + c] = Math.round(t * fg.data[cf * i + c] + (1 - t) * bg.data[cb * i + c]);
  }
  return out;
}

/** Bounding box [x0, y0, x1, y1] (pixel edges) of the pixels of a gray mask at or above threshold; undefined if none. */
export function maskBox(mask: Image, threshold = 128): Box | undefined {
  if (mask.channels !== 1) throw new EvalError(`maskBox needs a gray mask, got ${mask.channels} channels`, 'BAD_INPUT');
  let x0 = Infinity, y0 = Infinity, x1 = -1, y1 = -1;
  for (let y = 0; y < mask.height; y++) {
    const row = y * mask.width;
    for (let x = 0; x < mask.width; x++)
      if (mask.data[row + x] >= threshold) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        y1 = y;
      }
  }
  return x1 < 0 ? undefined : [x0, y0, x1 + 1, y1 + 1];
}

export interface Quality {
  psnr: number;
  ssim: number;
}

export interface FrameQuality {
  /** The whole frame. */
  full: Quality;
  /** The head box only. */
  head: Quality;
}

/** PSNR and SSIM of an output frame against the real one, over the full frame and the head box. */
export function frameQuality(real: Image, output: Image, headBox: Box, mode: SsimMode = 'rgb'): FrameQuality {
  return {
    full: { psnr: psnr(real, output), ssim: ssim(real, output, { mode }) },
    head: { psnr: psnr(real, output, { box: headBox }), ssim: ssim(real, output, { box: headBox, mode }) },
  };
}

export interface RenderedFrame {
  /** The real (ground-truth) frame. */
  real: Image;
  /** The model's colour where it covers the frame (anything elsewhere). */
  rendered: Image;
  /** The model's coverage (antialiased silhouette): gray 0-255 or floats in [0, 1]. */
  coverage: Image | Float32Array;
  /** The background plate the viewer composites over. */
  plate: Image;
  headBox: Box;
}

/**
 * The two protocols: the rendered head composited into the ground-truth frame with its own
 * coverage (the paper's), and over the baked plate (what a viewer of the asset sees).
 */
export function renderedQuality(f: RenderedFrame, mode: SsimMode = 'rgb'): { overReal: FrameQuality; overPlate: FrameQuality } {
  return {
    overReal: frameQuality(f.real, composite(f.rendered, f.coverage, f.real), f.headBox, mode),
    overPlate: frameQuality(f.real, composite(f.rendered, f.coverage, f.plate), f.headBox, mode),
  };
}

/** Mean of per-frame qualities, each frame's PSNR capped at PSNR_CAP. */
export function meanQuality(qs: readonly FrameQuality[]): FrameQuality {
  if (!qs.length) throw new EvalError('no frames to average: the held-out set is empty', 'NO_HELD_OUT');
  const m = (f: (q: FrameQuality) => number) => qs.reduce((s, q) => s + f(q), 0) / qs.length;
  const cap = (v: number) => Math.min(PSNR_CAP, v);
  return {
    full: { psnr: m((q) => cap(q.full.psnr)), ssim: m((q) => q.full.ssim) },
    head: { psnr: m((q) => cap(q.head.psnr)), ssim: m((q) => q.head.ssim) },
  };
}

/**
 * Landmark distance: the mean Euclidean distance in pixels between corresponding 2-D landmarks
 * (x, y of each [x, y, z] triple), over all landmarks or the given indices.
 */
export function lmd(a: ArrayLike<number>, b: ArrayLike<number>, idx?: readonly number[]): number {
  if (a.length !== b.length || a.length % 3)
    throw new EvalError(`landmark arrays must both be [n][3], got lengths ${a.length} and ${b.length}`, 'SIZE_MISMATCH');
  const n = a.length / 3;
  const ids = idx ?? Array.from({ length: n }, (_, i) => i);
  if (!ids.length) throw new EvalError('no landmarks to compare', 'BAD_INPUT');
  let s = 0;
  for (const i of ids) {
    if (i < 0 || i >= n) throw new EvalError(`landmark index ${i} is out of range (0-${n - 1})`, 'BAD_INPUT');
    const dx = a[3 * i] - b[3 * i], dy = a[3 * i + 1] - b[3 * i + 1];
    const d = Math.hypot(dx, dy);
    if (!Number.isFinite(d)) throw new EvalError(`landmark ${i} is not finite (a frame without a tracked face?): exclude such frames`, 'BAD_INPUT');
    s += d;
  }
  return s / ids.length;
}
