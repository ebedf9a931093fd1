// Head masks (person matte ∩ landmark head region), matte propagation and the background plate.
import { createImage, fillEllipse, fillPolygon, type Image } from '../image/index.js';
import { convexHull, headRegion, NUM_LANDMARKS, type Pt } from './geometry.js';

export function gray(width: number, height: number, data?: Uint8Array): Image {
  const img = createImage(width, height, 1);
  if (data) img.data.set(data);
  return img;
}

/** Pixels inside the convex hull of all landmarks. */
export function hullMask(px: Float32Array, w: number, h: number): Image {
  const pts: Pt[] = [];
  for (let i = 0; i < NUM_LANDMARKS; i++) pts.push([px[3 * i], px[3 * i + 1]]);
  const m = gray(w, h);
  fillPolygon(m, convexHull(pts), [255]);
  return m;
}

/** Bilinear resampling of a square gray matte of side s to w x h (pixel centres aligned). */
export function upsampleMatte(m: Uint8Array, s: number, w: number, h: number): Uint8Array {
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const fy = Math.min(s - 1, Math.max(0, ((y + 0.5) * s) / h - 0.5));
    const y0 = Math.floor(fy), y1 = Math.min(s - 1, y0 + 1), ty = fy - y0;
    for (let x = 0; x < w; x++) {
      const fx = Math.min(s - 1, Math.max(0, ((x + 0.5) * s) / w - 0.5));
      const x0 = Math.floor(fx), x1 = Math.min(s - 1, x0 + 1), tx = fx - x0;
      const a = m[y0 * s + x0] * (1 - tx) + m[y0 * s + x1] * tx;
      const b = m[y1 * s + x0] * (1 - tx) + m[y1 * s + x1] * tx;
      out[y * w + x] = Math.round(a * (1 - ty) + b * ty);
    }
  }
  return out;
}

/**
 * Shifts a matte by an integer offset (the face's motion since the matte's keyframe), repeating
 * edge pixels: the segmenter is the slowest stage, so it runs on every Nth frame only.
 */
export function shiftMatte(m: Uint8Array, w: number, h: number, dx: number, dy: number): Uint8Array {
  if (dx === 0 && dy === 0) return m;
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const sy = Math.min(h - 1, Math.max(0, y - dy));
    for (let x = 0; x < w; x++) out[y * w + x] = m[sy * w + Math.min(w - 1, Math.max(0, x - dx))];
  }
  return out;
}

export interface FrameMasks {
  /** Person matte with the face hull added (the face is always part of the person). */
  person: Image;
  head: Image;
  /** Fraction of the face hull the segmenter had missed (a quality figure). */
  hullMissed: number;
}

export function frameMasks(px: Float32Array, matte: Uint8Array, w: number, h: number): FrameMasks {
  const hull = hullMask(px, w, h);
  const region = gray(w, h);
  const r = headRegion(px);
  fillPolygon(region, r.hull, [255]);
  fillEllipse(region, r.skull.cx, r.skull.cy, r.skull.rx, r.skull.ry, r.skull.angle, [255]);
  fillPolygon(region, r.neck, [255]);
  const person = gray(w, h), head = gray(w, h);
  let hullN = 0, missed = 0;
  for (let i = 0; i < w * h; i++) {
    const inHull = hull.data[i] > 0;
    if (inHull) {
      hullN++;
      if (matte[i] < 128) missed++;
    }
    const p = inHull || matte[i] >= 128;
    person.data[i] = p ? 255 : 0;
    head.data[i] = p && region.data[i] > 0 ? 255 : 0;
  }
  return { person, head, hullMissed: hullN ? missed / hullN : 0 };
}

/** Grows a binary mask by r pixels (square structuring element, separable). */
export function dilate(m: Uint8Array, w: number, h: number, r: number): Uint8Array {
  const tmp = new Uint8Array(w * h), out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let k = Math.max(0, x - r); k <= Math.min(w - 1, x + r) && !v; k++) v = m[y * w + k];
      tmp[y * w + x] = v;
    }
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      let v = 0;
      for (let k = Math.max(0, y - r); k <= Math.min(h - 1, y + r) && !v; k++) v = tmp[k * w + x];
      out[y * w + x] = v;
    }
  return out;
}

/** Accumulates the background: the mean of each pixel over the frames where the head never covers it. */
export class PlateBuilder {
  private readonly sum: Float64Array;
  private readonly count: Uint32Array;
  constructor(readonly width: number, readonly height: number) {
    this.sum = new Float64Array(width * height * 3);
    this.count = new Uint32Array(width * height);
  }

  add(rgb: Uint8Array, head: Uint8Array): void {
    // A margin around the head keeps hair fringes and the antialiased edge out of the plate.
    const covered = dilate(head, this.width, this.height, 6);
    for (let i = 0; i < covered.length; i++) {
      if (covered[i]) continue;
      this.count[i]++;
      this.sum[3 * i] += rgb[3 * i];
      this.sum[3 * i + 1] += rgb[3 * i + 1];
      this.sum[3 * i + 2] += rgb[3 * i + 2];
    }
  }

  /** The plate, with always-covered pixels filled inwards from their seen neighbours (onion peeling). */
  build(): { plate: Image; filledFraction: number } {
    const { width: w, height: h } = this;
    const plate = createImage(w, h, 3);
    const known = new Uint8Array(w * h);
    let queue: number[] = [];
    let unknown = 0;
    for (let i = 0; i < w * h; i++) {
      if (this.count[i]) {
        known[i] = 1;
        for (let c = 0; c < 3; c++) plate.data[3 * i + c] = Math.round(this.sum[3 * i + c] / this.count[i]);
      } else unknown++;
    }
    if (unknown === w * h) return { plate, filledFraction: 1 };
    const nb = (i: number) => {
      const x = i % w, y = (i - x) / w, out: number[] = [];
      for (let dy = -1; dy <= 1; dy++)
        for (let dx = -1; dx <= 1; dx++) {
          if (!dx && !dy) continue;
          const u = x + dx, v = y + dy;
          if (u >= 0 && v >= 0 && u < w && v < h) out.push(v * w + u);
        }
      return out;
    };
    for (let i = 0; i < w * h; i++) if (!known[i] && nb(i).some((j) => known[j])) queue.push(i);
    while (queue.length) {
      const ring = queue;
      const vals = ring.map((i) => {
        const acc = [0, 0, 0];
        let n = 0;
        for (const j of nb(i)) if (known[j] === 1) {
          n++;
          for (let c = 0; c < 3; c++) acc[c] += plate.data[3 * j + c];
        }
        return acc.map((v) => Math.round(v / n));
      });
      ring.forEach((i, k) => {
        for (let c = 0; c < 3; c++) plate.data[3 * i + c] = vals[k][c];
        known[i] = 2;
      });
      const next = new Set<number>();
      for (const i of ring) {
        known[i] = 1;
        for (const j of nb(i)) if (!known[j]) next.add(j);
      }
      queue = [...next].sort((a, b) => a - b);
    }
    // Peeling leaves streaks along its rings; a few box blurs over the filled pixels only smooth
    // them without touching anything that was seen.
    const filled: number[] = [];
    for (let i = 0; i < w * h; i++) if (!this.count[i]) filled.push(i);
    const tmp = new Uint8Array(filled.length * 3);
    for (let it = 0; it < 6; it++) {
      filled.forEach((i, k) => {
        const x = i % w, y = (i - x) / w;
        const acc = [0, 0, 0];
        let n = 0;
        for (let dy = -2; dy <= 2; dy++)
          for (let dx = -2; dx <= 2; dx++) {
            const u = x + dx, v = y + dy;
            if (u < 0 || v < 0 || u >= w || v >= h) continue;
            const j = v * w + u;
            n++;
            for (let c = 0; c < 3; c++) acc[c] += plate.data[3 * j + c];
          }
        for (let c = 0; c < 3; c++) tmp[3 * k + c] = Math.round(acc[c] / n);
      });
      filled.forEach((i, k) => {
        for (let c = 0; c < 3; c++) plate.data[3 * i + c] = tmp[3 * k + c];
      });
    }
    return { plate, filledFraction: unknown / (w * h) };
  }
}
