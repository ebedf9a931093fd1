// Head poses re-solved against one rigid template of this person's face.
//
// MediaPipe's facial transformation matrix is fitted per frame to the whole landmark mesh,
// expression included, against a generic face: an open jaw or closed eyes tilt it, and the
// person's own face shape biases it differently as the head turns. The renderer places one
// canonical head with these poses, so pose jitter blurs the learned texture and geometry. Here
// the landmarks that expression barely moves (forehead, nose, eye corners, cheekbones) give one
// template per clip, and each frame's pose is re-solved so the template projects onto that
// frame's 2-D landmarks (robust Levenberg-Marquardt on reprojection error, a few rounds of
// template and poses).

import { type Camera, projectPoint } from './camera.js';
import { canonicalMesh, NUM_LANDMARKS } from './geometry.js';

/** MediaPipe mesh indices that move little with expression: forehead, nose bridge and tip, eye corners, cheekbones by the ears. */
export const RIGID_LANDMARKS: readonly number[] = [10, 151, 9, 8, 168, 6, 197, 195, 5, 4, 1, 33, 133, 362, 263, 234, 454, 127, 356, 93, 323];

export interface PoseRefinement {
  /** Re-solved poses (column-major 4x4), undefined where the input had none. */
  poses: Array<Float32Array | undefined>;
  /** The rigid template (cm, canonical face space), [RIGID_LANDMARKS.length][3]. */
  template: Float64Array;
  /** Median over frames of the median rigid-landmark reprojection error (px), with the tracker's poses and with the refined ones. */
  medianErrorPx: { before: number; after: number };
}

type Mat4 = Float64Array;

function mul(a: ArrayLike<number>, b: ArrayLike<number>): Mat4 {
  const o = new Float64Array(16);
  for (let c = 0; c < 4; c++)
    for (let r = 0; r < 4; r++) {
      let s = 0;
      for (let k = 0; k < 4; k++) s += a[k * 4 + r] * b[c * 4 + k];
      o[c * 4 + r] = s;
    }
  return o;
}

/** Rigid motion [exp(w) | v] in face space (Rodrigues), column-major. */
function motion(d: ArrayLike<number>): Mat4 {
  const [wx, wy, wz, vx, vy, vz] = [d[0], d[1], d[2], d[3], d[4], d[5]];
  const th = Math.hypot(wx, wy, wz);
  const m = new Float64Array(16);
  const [kx, ky, kz] = th > 1e-12 ? [wx / th, wy / th, wz / th] : [0, 0, 0];
  const c = Math.cos(th), s = Math.sin(th), t = 1 - c;
  const R = [
    c + kx * kx * t, kx * ky * t - kz * s, kx * kz * t + ky * s,
    ky * kx * t + kz * s, c + ky * ky * t, ky * kz * t - kx * s,
    kz * kx * t - ky * s, kz * ky * t + kx * s, c + kz * kz * t,
  ];
  for (let r = 0; r < 3; r++) for (let k = 0; k < 3; k++) m[k * 4 + r] = R[r * 3 + k];
  m[12] = vx; m[13] = vy; m[14] = vz; m[15] = 1;
  return m;
}

const median = (a: number[]): number => {
  if (!a.length) return NaN;
  const s = [...a].sort((x, y) => x - y);
  return s[s.length >> 1];
};

function residuals(cam: Camera, pose: ArrayLike<number>, template: Float64Array, target: Float64Array): Float64Array {
  const n = target.length / 2;
  const r = new Float64Array(2 * n);
  for (let k = 0; k < n; k++) {
    const [x, y] = projectPoint(cam, pose, template.subarray(3 * k, 3 * k + 3));
    r[2 * k] = x - target[2 * k];
    r[2 * k + 1] = y - target[2 * k + 1];
  }
  return r;
}

/** Solves the 6x6 system A x = b (Gaussian elimination with partial pivoting). */
function solve6(A: Float64Array, b: Float64Array): Float64Array | undefined {
  const n = 6, M = Float64Array.from(A), x = Float64Array.from(b);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r * n + c]) > Math.abs(M[p * n + c])) p = r;
    if (Math.abs(M[p * n + c]) < 1e-18) return undefined;
    if (p !== c) {
      for (let k = 0; k < n; k++) [M[c * n + k], M[p * n + k]] = [M[p * n + k], M[c * n + k]];
      [x[c], x[p]] = [x[p], x[c]];
    }
    for (let r = c + 1; r < n; r++) {
      const f = M[r * n + c] / M[c * n + c];
      for (let k = c; k < n; k++) M[r * n + k] -= f * M[c * n + k];
      x[r] -= f * x[c];
    }
  }
  for (let c = n - 1; c >= 0; c--) {
    let s = x[c];
    for (let k = c + 1; k < n; k++) s -= M[c * n + k] * x[k];
    x[c] = s / M[c * n + c];
  }
  return x;
}

/**
 * One frame: the pose (starting from `pose`) that projects `template` onto `target` (px), by
 * Levenberg-Marquardt with Huber weights (a landmark off by more than `huberPx` counts linearly).
 */
export function solvePose(cam: Camera, pose: ArrayLike<number>, template: Float64Array, target: Float64Array, huberPx = 2, iterations = 15): Float64Array {
  let P: Mat4 = Float64Array.from(pose);
  const cost = (r: Float64Array) => {
    let s = 0;
    for (let k = 0; k < r.length / 2; k++) {
      const e = Math.hypot(r[2 * k], r[2 * k + 1]);
      s += e <= huberPx ? 0.5 * e * e : huberPx * (e - 0.5 * huberPx);
    }
    return s;
  };
  let r = residuals(cam, P, template, target);
  let c0 = cost(r);
  let lambda = 1e-3;
  const eps = [1e-4, 1e-4, 1e-4, 1e-3, 1e-3, 1e-3]; // radians, cm
  for (let it = 0; it < iterations; it++) {
    const m = r.length;
    const J = new Float64Array(m * 6);
    for (let j = 0; j < 6; j++) {
      const d = new Float64Array(6);
      d[j] = eps[j];
      const rp = residuals(cam, mul(P, motion(d)), template, target);
      d[j] = -eps[j];
      const rm = residuals(cam, mul(P, motion(d)), template, target);
      for (let i = 0; i < m; i++) J[i * 6 + j] = (rp[i] - rm[i]) / (2 * eps[j]);
    }
    const A = new Float64Array(36), g = new Float64Array(6);
    for (let k = 0; k < m / 2; k++) {
      const e = Math.hypot(r[2 * k], r[2 * k + 1]);
      const w = e <= huberPx ? 1 : huberPx / e;
      for (const i of [2 * k, 2 * k + 1])
        for (let a = 0; a < 6; a++) {
          g[a] -= w * J[i * 6 + a] * r[i];
          for (let b = 0; b < 6; b++) A[a * 6 + b] += w * J[i * 6 + a] * J[i * 6 + b];
        }
    }
    let accepted = false;
    for (let tries = 0; tries < 8 && !accepted; tries++) {
      const Ad = Float64Array.from(A);
      for (let a = 0; a < 6; a++) Ad[a * 6 + a] *= 1 + lambda;
      const d = solve6(Ad, g);
      if (!d) break;
      const Pn = mul(P, motion(d));
      const rn = residuals(cam, Pn, template, target);
      const cn = cost(rn);
      if (cn < c0) {
        const gain = c0 - cn;
        P = Pn; r = rn; c0 = cn; accepted = true;
        lambda = Math.max(lambda / 10, 1e-7);
        if (gain <= 1e-9 * c0) return P;
      } else lambda *= 10;
    }
    if (!accepted) break;
  }
  return P;
}

/**
 * Re-solves every frame's pose against one rigid template built from the clip itself (the
 * median over frames of the rigid landmarks moved into canonical space), for `rounds` rounds of
 * template then poses. `poses` and `pixels` (478 x [x, y, z] px per frame, as landmarksToPixels)
 * are undefined for frames without a face.
 */
export function refinePoses(
  cam: Camera,
  poses: ReadonlyArray<ArrayLike<number> | undefined>,
  pixels: ReadonlyArray<Float32Array | undefined>,
  rounds = 3,
): PoseRefinement {
  const K = RIGID_LANDMARKS.length;
  const frames = poses.map((p, i) => (p && pixels[i] ? i : -1)).filter((i) => i >= 0);
  const targets = new Map<number, Float64Array>();
  for (const i of frames) {
    const t = new Float64Array(2 * K);
    RIGID_LANDMARKS.forEach((l, k) => { t[2 * k] = pixels[i]![3 * l]; t[2 * k + 1] = pixels[i]![3 * l + 1]; });
    targets.set(i, t);
  }
  let current: Array<Float64Array | undefined> = poses.map((p) => (p ? Float64Array.from(p) : undefined));
  const template = new Float64Array(3 * K);
  const frameError = (P: ArrayLike<number>, i: number) => {
    const r = residuals(cam, P, template, targets.get(i)!);
    return median(Array.from({ length: K }, (_, k) => Math.hypot(r[2 * k], r[2 * k + 1])));
  };
  let before = NaN;
  for (let round = 0; round < rounds; round++) {
    // Template: per rigid landmark and coordinate, the median over frames of its canonical position.
    const canon = frames.map((i) => canonicalMesh(cam, current[i]!, pixels[i]!));
    for (let k = 0; k < K; k++)
      for (let d = 0; d < 3; d++) template[3 * k + d] = median(canon.map((c) => c[3 * RIGID_LANDMARKS[k] + d]));
    if (round === 0) before = median(frames.map((i) => frameError(poses[i]!, i)));
    current = current.map((P, i) => (P && targets.has(i) ? solvePose(cam, P, template, targets.get(i)!) : P));
  }
  const after = median(frames.map((i) => frameError(current[i]!, i)));
  return {
    poses: current.map((P) => (P ? Float32Array.from(P) : undefined)),
    template,
    medianErrorPx: { before, after },
  };
}

/** RMS (cm) over frames of the rigid landmarks' spread in canonical space: how steady the poses hold the face. */
export function rigidSpreadCm(canonical: Float32Array): number {
  const n = canonical.length / (NUM_LANDMARKS * 3);
  let total = 0;
  for (const l of RIGID_LANDMARKS) {
    const mean = [0, 0, 0];
    let count = 0;
    for (let i = 0; i < n; i++) {
      const o = (i * NUM_LANDMARKS + l) * 3;
      if (Number.isNaN(canonical[o])) continue;
      count++;
      for (let d = 0; d < 3; d++) mean[d] += canonical[o + d];
    }
    let ss = 0;
    for (let i = 0; i < n; i++) {
      const o = (i * NUM_LANDMARKS + l) * 3;
      if (Number.isNaN(canonical[o])) continue;
      for (let d = 0; d < 3; d++) ss += (canonical[o + d] - mean[d] / count) ** 2;
    }
    total += Math.sqrt(ss / Math.max(1, count));
  }
  return total / RIGID_LANDMARKS.length;
}
