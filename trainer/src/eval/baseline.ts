// The 2-D baselines every evaluation reports beside the model, on the same held-out frames.
//
// Nearest-frame baseline: take the training frame nearest in blendshapes and head pose, align it
// to the real frame with the 2-D similarity that best maps its landmarks onto the real frame's
// (least squares, i.e. Umeyama without reflection), warp it (bilinear) and paste its face region
// (the convex hull of its aligned landmarks, feathered by a linear ramp inside the hull edge) into
// the real frame. On a short clip this already reaches paper-level full-frame PSNR, which is why
// head-box PSNR and LMD against it are what show a 3-D model's worth.
//
// Plate-only baseline: the background plate where the real head mask is, i.e. no head at all:
// the floor any trained model must clear.
import { createImage, type Image } from '../image/index.js';
import { EvalError } from './errors.js';
import { NUM_LANDMARKS } from './dataset.js';
import { convexHull, type Pt } from '../prepare/geometry.js';

/** x' = a x - b y + tx, y' = b x + a y + ty: scale hypot(a, b), rotation atan2(b, a). */
export interface Similarity {
  a: number;
  b: number;
  tx: number;
  ty: number;
}

export function applySimilarity(s: Similarity, x: number, y: number): [number, number] {
  return [s.a * x - s.b * y + s.tx, s.b * x + s.a * y + s.ty];
}

export function invertSimilarity(s: Similarity): Similarity {
  const d = s.a * s.a + s.b * s.b;
  if (!(d > 0)) throw new EvalError('the similarity has zero scale and cannot be inverted', 'BAD_INPUT');
  const a = s.a / d, b = -s.b / d;
  return { a, b, tx: -(a * s.tx - b * s.ty), ty: -(b * s.tx + a * s.ty) };
}

/**
 * The similarity (rotation, uniform scale, translation; no reflection) minimising
 * sum |S(src_i) - dst_i|^2 over 2-D points given as [x, y, (z)] triples (stride 3) or pairs (stride 2).
 * Closed form: centre both sets; with p, q the centred points as complex numbers,
 * a + ib = sum(conj(p) q) / sum |p|^2.
 */
export function fitSimilarity(src: ArrayLike<number>, dst: ArrayLike<number>, stride: 2 | 3 = 3): Similarity {
  if (src.length !== dst.length || src.length % stride) throw new EvalError(`fitSimilarity needs two point sets of equal size, got ${src.length} and ${dst.length} values`, 'SIZE_MISMATCH');
  const n = src.length / stride;
  if (n < 2) throw new EvalError('fitSimilarity needs at least two points', 'BAD_INPUT');
  let sx = 0, sy = 0, dx = 0, dy = 0;
  for (let i = 0; i < n; i++) {
    sx += src[stride * i];
    sy += src[stride * i + 1];
    dx += dst[stride * i];
    dy += dst[stride * i + 1];
  }
  sx /= n; sy /= n; dx /= n; dy /= n;
  let re = 0, im = 0, norm = 0;
  for (let i = 0; i < n; i++) {
    const px = src[stride * i] - sx, py = src[stride * i + 1] - sy;
    const qx = dst[stride * i] - dx, qy = dst[stride * i + 1] - dy;
    re += px * qx + py * qy;
    im += px * qy - py * qx;
    norm += px * px + py * py;
  }
  if (!(norm > 0) || !Number.isFinite(re + im)) throw new EvalError('fitSimilarity: the source points are all equal or not finite', 'BAD_INPUT');
  const a = re / norm, b = im / norm;
  return { a, b, tx: dx - (a * sx - b * sy), ty: dy - (b * sx + a * sy) };
}

/**
 * Warps src into a width x height image so that out(S(p)) = src(p), sampling bilinearly at pixel
 * centres (pixel i spans [i, i + 1), edges clamped). Only the rows and columns of `rect` are
 * written (the rest stays zero): the baseline needs the face region only.
 */
export function warpSimilarity(src: Image, s: Similarity, width: number, height: number, rect?: { x0: number; y0: number; x1: number; y1: number }): Image {
  const ch = src.channels;
  const out = createImage(width, height, ch);
  const inv = invertSimilarity(s);
  const W = src.width, H = src.height, d = src.data;
  const x0 = Math.max(0, rect?.x0 ?? 0), y0 = Math.max(0, rect?.y0 ?? 0);
  const x1 = Math.min(width, rect?.x1 ?? width), y1 = Math.min(height, rect?.y1 ?? height);
  for (let y = y0; y < y1; y++) {
    for (let x = x0; x < x1; x++) {
      const X = x + 0.5, Y = y + 0.5;
      const u = inv.a * X - inv.b * Y + inv.tx - 0.5, v = inv.b * X + inv.a * Y + inv.ty - 0.5;
      const uc = Math.min(W - 1, Math.max(0, u)), vc = Math.min(H - 1, Math.max(0, v));
      const i0 = Math.min(W - 2, Math.floor(uc)), j0 = Math.min(H - 2, Math.floor(vc));
      const fu = uc - i0, fv = vc - j0;
      const p00 = (j0 * W + i0) * ch, p10 = p00 + ch, p01 = p00 + W * ch, p11 = p01 + ch;
      const o = (y * width + x) * ch;
      for (let c = 0; c < ch; c++) {
        const top = d[p00 + c] + (d[p10 + c] - d[p00 + c]) * fu;
        const bot = d[p01 + c] + (d[p11 + c] - d[p01 + c]) * fu;
        out.data[o + c] = Math.round(top + (bot - top) * fv);
      }
    }
  }
  return out;
}


export function polygonArea(poly: readonly Pt[]): number {
  let s = 0;
  for (let i = 0, j = poly.length - 1; i < poly.length; j = i++) s += poly[j][0] * poly[i][1] - poly[i][0] * poly[j][1];
  return Math.abs(s) / 2;
}

/**
 * A feathered mask of a convex polygon: at each pixel centre, alpha = clamp(d / feather, 0, 1)
 * with d the distance to the polygon's boundary inside it (0 outside). For a convex polygon that
 * distance is the smallest distance to its edge lines, so the ramp is exact and costs one pass.
 */
export function featheredHull(hull: readonly Pt[], width: number, height: number, feather: number): { alpha: Float32Array; rect: { x0: number; y0: number; x1: number; y1: number } } {
  const alpha = new Float32Array(width * height);
  if (hull.length < 3) return { alpha, rect: { x0: 0, y0: 0, x1: 0, y1: 0 } };
  // Inward unit normals from the polygon's orientation (signed area).
  let area2 = 0;
  for (let i = 0, j = hull.length - 1; i < hull.length; j = i++) area2 += hull[j][0] * hull[i][1] - hull[i][0] * hull[j][1];
  const sgn = area2 > 0 ? 1 : -1;
  const edges: Array<[number, number, number]> = [];
  for (let i = 0; i < hull.length; i++) {
    const [ax, ay] = hull[i], [bx, by] = hull[(i + 1) % hull.length];
    const len = Math.hypot(bx - ax, by - ay);
    if (len === 0) continue;
    const nx = (-(by - ay) / len) * sgn, ny = ((bx - ax) / len) * sgn;
    edges.push([nx, ny, -(nx * ax + ny * ay)]);
  }
  let xmin = Infinity, ymin = Infinity, xmax = -Infinity, ymax = -Infinity;
  for (const [x, y] of hull) {
    xmin = Math.min(xmin, x); xmax = Math.max(xmax, x);
    ymin = Math.min(ymin, y); ymax = Math.max(ymax, y);
  }
  const rect = {
    x0: Math.max(0, Math.floor(xmin)), y0: Math.max(0, Math.floor(ymin)),
    x1: Math.min(width, Math.ceil(xmax) + 1), y1: Math.min(height, Math.ceil(ymax) + 1),
  };
  const inv = feather > 0 ? 1 / feather : Infinity;
  for (let y = rect.y0; y < rect.y1; y++) {
    const Y = y + 0.5;
    for (let x = rect.x0; x < rect.x1; x++) {
      const X = x + 0.5;
      let d = Infinity;
      for (const [nx, ny, c] of edges) {
        const e = nx * X + ny * Y + c;
        if (e < d) d = e;
        if (d <= 0) break;
      }
      if (d > 0) alpha[y * width + x] = Math.min(1, d * inv);
    }
  }
  return { alpha, rect };
}

export interface PoseCoefficients {
  blendshapes: ArrayLike<number>;
  pose: ArrayLike<number>;
}

/** Weight of the pose's translation in the nearest-frame distance: 10 cm counts like 1. */
export const TRANSLATION_SCALE_CM = 10;

/**
 * Squared distance between two frames' coefficients: the sum of squared blendshape differences,
 * plus the squared Frobenius distance of the rotation parts (about the squared angle times 2 for
 * small angles), plus the squared translation difference in units of TRANSLATION_SCALE_CM.
 */
export function coefficientDistance(p: PoseCoefficients, q: PoseCoefficients): number {
  let s = 0;
  for (let i = 0; i < p.blendshapes.length; i++) s += (p.blendshapes[i] - q.blendshapes[i]) ** 2;
  for (const i of [0, 1, 2, 4, 5, 6, 8, 9, 10]) s += (p.pose[i] - q.pose[i]) ** 2;
  for (const i of [12, 13, 14]) s += ((p.pose[i] - q.pose[i]) / TRANSLATION_SCALE_CM) ** 2;
  return s;
}

/** Index (into candidates) of the candidate nearest to the query; ties go to the earliest. */
export function nearestFrame(query: PoseCoefficients, candidates: readonly PoseCoefficients[]): number {
  if (!candidates.length) throw new EvalError('no training frames to choose from', 'DATASET');
  let best = 0, bd = Infinity;
  candidates.forEach((c, k) => {
    const d = coefficientDistance(query, c);
    if (d < bd) { bd = d; best = k; }
  });
  return best;
}

export interface PasteOptions {
  /** Feather width as a fraction of sqrt(hull area) (about the face's size); default 0.05. */
  featherFraction?: number;
}

export interface PasteResult {
  /** The real frame with the aligned training face pasted in. */
  output: Image;
  /** The pasted face's coverage in [0, 1]. */
  alpha: Float32Array;
  similarity: Similarity;
  /** The source frame's landmarks after alignment, [478][3] (z scaled with the similarity). */
  alignedLandmarks: Float32Array;
  featherPx: number;
}

/** Aligns a source frame to a target frame on their landmarks and pastes its feathered face hull. */
export function pasteFace(source: Image, sourceLandmarks: ArrayLike<number>, target: Image, targetLandmarks: ArrayLike<number>, opts: PasteOptions = {}): PasteResult {
  if (source.width !== target.width || source.height !== target.height || source.channels !== target.channels)
    throw new EvalError(`source and target frames differ in size (${source.width}x${source.height}x${source.channels} vs ${target.width}x${target.height}x${target.channels})`, 'SIZE_MISMATCH');
  if (sourceLandmarks.length !== NUM_LANDMARKS * 3 || targetLandmarks.length !== NUM_LANDMARKS * 3)
    throw new EvalError(`landmarks must be ${NUM_LANDMARKS} [x, y, z] triples`, 'SIZE_MISMATCH');
  const { width: w, height: h } = target;
  const sim = fitSimilarity(sourceLandmarks, targetLandmarks);
  const scale = Math.hypot(sim.a, sim.b);
  const aligned = new Float32Array(NUM_LANDMARKS * 3);
  const pts: Pt[] = [];
  for (let i = 0; i < NUM_LANDMARKS; i++) {
    const [x, y] = applySimilarity(sim, sourceLandmarks[3 * i], sourceLandmarks[3 * i + 1]);
    aligned[3 * i] = x;
    aligned[3 * i + 1] = y;
    aligned[3 * i + 2] = sourceLandmarks[3 * i + 2] * scale;
    pts.push([x, y]);
  }
  const hull = convexHull(pts);
  const featherPx = (opts.featherFraction ?? 0.05) * Math.sqrt(polygonArea(hull));
  const { alpha, rect } = featheredHull(hull, w, h, featherPx);
  const warped = warpSimilarity(source, sim, w, h, rect);
  const output = createImage(w, h, target.channels);
  output.data.set(target.data);
  const ch = target.channels;
  for (let y = rect.y0; y < rect.y1; y++)
    for (let x = rect.x0; x < rect.x1; x++) {
      const i = y * w + x, t = alpha[i];
      if (t <= 0) continue;
      for (let c = 0; c < ch; c++) output.data[ch * i + c] = Math.round(t * warped.data[ch * i + c] + (1 - t) * target.data[ch * i + c]);
    }
  return { output, alpha, similarity: sim, alignedLandmarks: aligned, featherPx };
}

/** The plate-only baseline: the plate wherever the real head mask is set (mask > 127). */
export function plateOnly(real: Image, plate: Image, headMask: Image): Image {
  if (plate.width !== real.width || plate.height !== real.height || headMask.width !== real.width || headMask.height !== real.height || headMask.channels !== 1)
    throw new EvalError('plate-only baseline: the plate, head mask and frame must share one size (the mask gray)', 'SIZE_MISMATCH');
  const out = createImage(real.width, real.height, real.channels);
  out.data.set(real.data);
  const ch = real.channels, pc = plate.channels;
  for (let i = 0; i < headMask.data.length; i++)
    if (headMask.data[i] > 127) for (let c = 0; c < Math.min(ch, 3); c++) out.data[ch * i + c] = plate.data[pc * i + c];
  return out;
}
