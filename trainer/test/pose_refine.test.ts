// Pose re-solving (prepare/pose_refine.ts) on synthetic frames with a known answer.
import { describe, expect, it } from 'vitest';
import { projectPoint, trackerCamera } from '../src/prepare/camera.js';
import { solvePose } from '../src/prepare/pose_refine.js';
import { smoothPoses } from '../src/prepare/geometry.js';

const cam = trackerCamera(512, 512);

/** Column-major pose: rotation by yaw (about y) then pitch (about x), translation t. */
function pose(yawDeg: number, pitchDeg: number, t: [number, number, number]): Float64Array {
  const a = (yawDeg * Math.PI) / 180, b = (pitchDeg * Math.PI) / 180;
  const Ry = [Math.cos(a), 0, Math.sin(a), 0, 1, 0, -Math.sin(a), 0, Math.cos(a)];
  const Rx = [1, 0, 0, 0, Math.cos(b), -Math.sin(b), 0, Math.sin(b), Math.cos(b)];
  const R = new Array(9).fill(0);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) for (let k = 0; k < 3; k++) R[r * 3 + c] += Rx[r * 3 + k] * Ry[k * 3 + c];
  const m = new Float64Array(16);
  for (let r = 0; r < 3; r++) for (let c = 0; c < 3; c++) m[c * 4 + r] = R[r * 3 + c];
  m[12] = t[0]; m[13] = t[1]; m[14] = t[2]; m[15] = 1;
  return m;
}

// A face-sized rigid point set (cm): deterministic pseudo-random points in a 14 x 16 x 8 cm box.
const K = 21;
const template = new Float64Array(3 * K);
let seed = 7;
const rand = () => ((seed = (seed * 16807) % 2147483647) / 2147483647);
for (let k = 0; k < K; k++) { template[3 * k] = (rand() - 0.5) * 14; template[3 * k + 1] = (rand() - 0.5) * 16; template[3 * k + 2] = rand() * 8; }

function targetsOf(P: ArrayLike<number>): Float64Array {
  const t = new Float64Array(2 * K);
  for (let k = 0; k < K; k++) [t[2 * k], t[2 * k + 1]] = projectPoint(cam, P, template.subarray(3 * k, 3 * k + 3));
  return t;
}

function maxError(P: ArrayLike<number>, target: Float64Array, skip = -1): number {
  let e = 0;
  for (let k = 0; k < K; k++) {
    if (k === skip) continue;
    const [x, y] = projectPoint(cam, P, template.subarray(3 * k, 3 * k + 3));
    e = Math.max(e, Math.hypot(x - target[2 * k], y - target[2 * k + 1]));
  }
  return e;
}

describe('solvePose', () => {
  it('recovers a known pose from a start 6 degrees and 1.5 cm off', () => {
    for (const [yaw, pitch] of [[0, 0], [25, -10], [-30, 15]]) {
      const truth = pose(yaw, pitch, [2, -1, -55]);
      const target = targetsOf(truth);
      const start = pose(yaw + 6, pitch - 4, [3, 0, -54]);
      expect(maxError(start, target)).toBeGreaterThan(10);
      const P = solvePose(cam, start, template, target);
      expect(maxError(P, target)).toBeLessThan(1e-3);
      for (let i = 0; i < 16; i++) expect(Math.abs(P[i] - truth[i])).toBeLessThan(1e-4 * (i >= 12 ? 100 : 1));
    }
  });

  it('is robust to one landmark far off (Huber weights)', () => {
    const truth = pose(10, 5, [0, 1, -60]);
    const target = targetsOf(truth);
    target[2 * 4] += 40; // landmark 4 mistracked by 40 px
    const P = solvePose(cam, pose(14, 2, [1, 0, -58]), template, target);
    expect(maxError(P, target, 4)).toBeLessThan(0.5);
  });

  it('smooths jittery poses, and leaves them as solved at cutoff 0', () => {
    // A still head with 1 degree of yaw jitter and 3 mm of x jitter per frame.
    const poses = Array.from({ length: 50 }, (_, k) => pose(k % 2 ? 1 : -1, 0, [k % 2 ? 0.3 : -0.3, 0, -60]));
    const raw = smoothPoses(poses, 25, 0);
    for (let k = 0; k < poses.length; k++) for (let i = 0; i < 16; i++) expect(raw[k][i]).toBeCloseTo(poses[k][i], 6);
    const smooth = smoothPoses(poses, 25);
    const jitter = (ps: ArrayLike<number>[]) => Math.max(...ps.slice(10, 40).map((p) => Math.abs(p[12])));
    expect(jitter(smooth)).toBeLessThan(0.3 * jitter(raw));
  });
});
