// Landmark geometry: index sets of MediaPipe's 478-point face mesh, hulls, boxes, pose smoothing,
// and the canonical (pose-free) per-frame landmark mesh.
import { type Camera, focalPx, invertPose, transformPoint, unprojectPixel } from './camera.js';

export const NUM_LANDMARKS = 478;
/** Mesh indices (MediaPipe face mesh topology). */
export const LM = {
  forehead: 10,
  chin: 152,
  cheekRight: 234, // subject's right, image left
  cheekLeft: 454,
  upperInnerLip: 13,
  lowerInnerLip: 14,
  lipsOuter: [61, 146, 91, 181, 84, 17, 314, 405, 321, 375, 291, 409, 270, 269, 267, 0, 37, 39, 40, 185],
  rightEye: [33, 7, 163, 144, 145, 153, 154, 155, 133, 246, 161, 160, 159, 158, 157, 173, 468, 469, 470, 471, 472],
  leftEye: [263, 249, 390, 373, 374, 380, 381, 382, 362, 466, 388, 387, 386, 385, 384, 398, 473, 474, 475, 476, 477],
  faceOval: [10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377, 152, 148, 176, 149, 150, 136,
    172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109],
} as const;

export type Pt = [number, number];
export type Box = [number, number, number, number];

/** Convex hull (Andrew's monotone chain), counter-clockwise in image coordinates. */
export function convexHull(pts: readonly Pt[]): Pt[] {
  const p = [...pts].sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  if (p.length < 3) return p;
  const cross = (o: Pt, a: Pt, b: Pt) => (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0]);
  const lower: Pt[] = [], upper: Pt[] = [];
  for (const q of p) {
    while (lower.length >= 2 && cross(lower[lower.length - 2], lower[lower.length - 1], q) <= 0) lower.pop();
    lower.push(q);
  }
  for (let i = p.length - 1; i >= 0; i--) {
    const q = p[i];
    while (upper.length >= 2 && cross(upper[upper.length - 2], upper[upper.length - 1], q) <= 0) upper.pop();
    upper.push(q);
  }
  return lower.slice(0, -1).concat(upper.slice(0, -1));
}

/** Bounding box of the given landmarks, grown by pad times its larger side, clamped to the image. */
export function landmarkBox(px: Float32Array, idx: readonly number[], pad: number, w: number, h: number): Box {
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const i of idx) {
    x0 = Math.min(x0, px[3 * i]);
    x1 = Math.max(x1, px[3 * i]);
    y0 = Math.min(y0, px[3 * i + 1]);
    y1 = Math.max(y1, px[3 * i + 1]);
  }
  const m = pad * Math.max(x1 - x0, y1 - y0);
  const r = (v: number) => Math.round(v * 10) / 10;
  return [r(Math.max(0, x0 - m)), r(Math.max(0, y0 - m)), r(Math.min(w, x1 + m)), r(Math.min(h, y1 + m))];
}

/**
 * Head region in the image, built from landmarks since no face-parsing model is available:
 * the landmark hull, an ellipse over the skull and hair, and the neck down to a cut under the chin.
 * Polygons in pixels; the mask is their union (intersected with the person matte by the caller).
 */
export function headRegion(px: Float32Array): { hull: Pt[]; skull: { cx: number; cy: number; rx: number; ry: number; angle: number }; neck: Pt[] } {
  const pts: Pt[] = [];
  for (let i = 0; i < NUM_LANDMARKS; i++) pts.push([px[3 * i], px[3 * i + 1]]);
  const hull = convexHull(pts);
  const P = (i: number): Pt => [px[3 * i], px[3 * i + 1]];
  const top = P(LM.forehead), chin = P(LM.chin), cl = P(LM.cheekLeft), cr = P(LM.cheekRight);
  const fh = Math.hypot(top[0] - chin[0], top[1] - chin[1]);
  const fw = Math.hypot(cl[0] - cr[0], cl[1] - cr[1]);
  // Face axes: up from chin to forehead, right across the cheeks.
  const ux = (top[0] - chin[0]) / fh, uy = (top[1] - chin[1]) / fh;
  const rx = -uy, ry = ux;
  const mid: Pt = [(top[0] + chin[0]) / 2, (top[1] + chin[1]) / 2];
  const skull = {
    cx: mid[0] + ux * 0.28 * fh,
    cy: mid[1] + uy * 0.28 * fh,
    rx: 0.92 * fw,
    ry: 0.85 * fh,
    angle: Math.atan2(ry, rx),
  };
  // Neck: from the jaw line down to a cut 0.35 face heights below the chin.
  const nw = 0.36 * fw, down = 0.35 * fh;
  const at = (a: number, b: number): Pt => [chin[0] + rx * a - ux * b, chin[1] + ry * a - uy * b];
  const neck: Pt[] = [at(-nw * 1.25, -0.25 * fh), at(nw * 1.25, -0.25 * fh), at(nw, down), at(-nw, down)];
  return { hull, skull, neck };
}

/** Inner-lip gap over face height: an image measure of mouth opening. */
export function innerLipGap(px: Float32Array): number {
  const d = (a: number, b: number) => Math.hypot(px[3 * a] - px[3 * b], px[3 * a + 1] - px[3 * b + 1]);
  return d(LM.upperInnerLip, LM.lowerInnerLip) / d(LM.forehead, LM.chin);
}

/**
 * Tracker landmarks (normalised x, y, z) -> pixels (x, y) and z in pixels (MediaPipe's z has the
 * scale of x, relative to the head centre, smaller is nearer).
 */
export function landmarksToPixels(norm: ArrayLike<number>, w: number, h: number): Float32Array {
  const out = new Float32Array(NUM_LANDMARKS * 3);
  for (let i = 0; i < NUM_LANDMARKS; i++) {
    out[3 * i] = norm[3 * i] * w;
    out[3 * i + 1] = norm[3 * i + 1] * h;
    out[3 * i + 2] = norm[3 * i + 2] * w;
  }
  return out;
}

/**
 * Centroid (cm) of the 468 mesh vertices of MediaPipe's canonical face model: the tracker's
 * relative z is centred on the landmarks, so this is where its zero lies in face space.
 */
export const CANONICAL_CENTROID = [0, -0.6764, 4.159] as const;

/**
 * The landmark mesh in canonical face space (cm): each landmark is unprojected along its pixel
 * ray to a camera-space depth (the pose-transformed canonical centroid's depth, plus the
 * tracker's relative z converted from pixels to cm at that depth), then moved by the inverse
 * pose. By construction it projects back onto the tracker's landmarks with the same pose and camera.
 */
export function canonicalMesh(cam: Camera, pose: ArrayLike<number>, px: Float32Array): Float32Array {
  const inv = invertPose(pose);
  const zc = transformPoint(pose, CANONICAL_CENTROID)[2];
  const cmPerPx = -zc / focalPx(cam);
  let zMean = 0;
  for (let i = 0; i < 468; i++) zMean += px[3 * i + 2] / 468;
  const out = new Float32Array(NUM_LANDMARKS * 3);
  for (let i = 0; i < NUM_LANDMARKS; i++) {
    const z = zc - (px[3 * i + 2] - zMean) * cmPerPx;
    const c = transformPoint(inv, unprojectPixel(cam, px[3 * i], px[3 * i + 1], z));
    out[3 * i] = c[0];
    out[3 * i + 1] = c[1];
    out[3 * i + 2] = c[2];
  }
  return out;
}

// ---- pose smoothing ---------------------------------------------------------------------------

/** prepare's default One Euro cutoff for head poses, Hz (`--pose-smoothing`). */
export const DEFAULT_POSE_SMOOTHING_HZ = 1.5;

function matToQuat(m: ArrayLike<number>, s: number): number[] {
  const r = (row: number, col: number) => m[col * 4 + row] / s;
  const tr = r(0, 0) + r(1, 1) + r(2, 2);
  let w, x, y, z;
  if (tr > 0) {
    const k = Math.sqrt(tr + 1) * 2;
    w = 0.25 * k; x = (r(2, 1) - r(1, 2)) / k; y = (r(0, 2) - r(2, 0)) / k; z = (r(1, 0) - r(0, 1)) / k;
  } else if (r(0, 0) > r(1, 1) && r(0, 0) > r(2, 2)) {
    const k = Math.sqrt(1 + r(0, 0) - r(1, 1) - r(2, 2)) * 2;
    w = (r(2, 1) - r(1, 2)) / k; x = 0.25 * k; y = (r(0, 1) + r(1, 0)) / k; z = (r(0, 2) + r(2, 0)) / k;
  } else if (r(1, 1) > r(2, 2)) {
    const k = Math.sqrt(1 + r(1, 1) - r(0, 0) - r(2, 2)) * 2;
    w = (r(0, 2) - r(2, 0)) / k; x = (r(0, 1) + r(1, 0)) / k; y = 0.25 * k; z = (r(1, 2) + r(2, 1)) / k;
  } else {
    const k = Math.sqrt(1 + r(2, 2) - r(0, 0) - r(1, 1)) * 2;
    w = (r(1, 0) - r(0, 1)) / k; x = (r(0, 2) + r(2, 0)) / k; y = (r(1, 2) + r(2, 1)) / k; z = 0.25 * k;
  }
  return [w, x, y, z];
}

function quatToMat(q: number[], s: number, t: number[]): Float32Array {
  const n = Math.hypot(...q);
  const [w, x, y, z] = q.map((v) => v / n);
  const R = [
    1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
    2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
    2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
  ];
  const m = new Float32Array(16);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) m[c * 4 + r] = R[r * 3 + c] * s;
  m[12] = t[0]; m[13] = t[1]; m[14] = t[2]; m[15] = 1;
  return m;
}

/**
 * One Euro filter over a sequence of vectors: the cutoff rises with speed, so still heads lose
 * their jitter while fast turns keep their timing. Run forwards and backwards and averaged, the
 * (offline) result has no lag in either direction.
 */
function oneEuro(seq: number[][], fps: number, minCutoff: number, beta: number): number[][] {
  const alpha = (cutoff: number) => 1 / (1 + fps / (2 * Math.PI * cutoff));
  const pass = (xs: number[][]) => {
    const out: number[][] = [];
    let prev = xs[0], dprev = xs[0].map(() => 0);
    out.push(prev);
    for (let k = 1; k < xs.length; k++) {
      const d = xs[k].map((v, j) => (v - prev[j]) * fps);
      const ad = alpha(1);
      dprev = d.map((v, j) => dprev[j] + ad * (v - dprev[j]));
      const speed = Math.hypot(...dprev);
      const a = alpha(minCutoff + beta * speed);
      prev = xs[k].map((v, j) => prev[j] + a * (v - prev[j]));
      out.push(prev);
    }
    return out;
  };
  const f = pass(seq);
  const b = pass([...seq].reverse()).reverse();
  return f.map((v, k) => v.map((x, j) => 0.5 * (x + b[k][j])));
}

/**
 * Smooths a run of consecutive poses (column-major 4x4) at fps; returns new matrices. minCutoff
 * is the One Euro filter's cutoff at rest in Hz (the scale's is a third of it); 0 returns copies.
 */
export function smoothPoses(poses: ArrayLike<number>[], fps: number, minCutoff = DEFAULT_POSE_SMOOTHING_HZ): Float32Array[] {
  if (poses.length < 3 || minCutoff === 0) return poses.map((p) => Float32Array.from(p));
  const scales = poses.map((m) => Math.cbrt(m[0] * (m[5] * m[10] - m[9] * m[6]) - m[4] * (m[1] * m[10] - m[9] * m[2]) + m[8] * (m[1] * m[6] - m[5] * m[2])));
  const quats = poses.map((m, k) => matToQuat(m, scales[k]));
  for (let k = 1; k < quats.length; k++) {
    const dot = quats[k].reduce((s, v, j) => s + v * quats[k - 1][j], 0);
    if (dot < 0) quats[k] = quats[k].map((v) => -v);
  }
  const q = oneEuro(quats, fps, minCutoff, 2.0);
  const t = oneEuro(poses.map((m) => [m[12], m[13], m[14]]), fps, minCutoff, 0.3);
  const s = oneEuro(scales.map((v) => [v]), fps, minCutoff / 3, 0);
  return poses.map((_, k) => quatToMat(q[k], s[k][0], t[k]));
}

/** Yaw, pitch, roll in degrees of a pose (for plots). */
export function poseAngles(m: ArrayLike<number>): [number, number, number] {
  const s = Math.hypot(m[0], m[1], m[2]);
  const r = (row: number, col: number) => m[col * 4 + row] / s;
  const yaw = Math.asin(Math.max(-1, Math.min(1, r(0, 2))));
  const pitch = Math.atan2(-r(1, 2), r(2, 2));
  const roll = Math.atan2(-r(0, 1), r(0, 0));
  return [yaw, pitch, roll].map((v) => (v * 180) / Math.PI) as [number, number, number];
}
