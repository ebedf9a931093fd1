// The native trainer through the real addon (built here if missing): determinism, exact
// checkpoints, learning an analytic sphere, clear errors.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { addonCandidates, backends, createTrainer, type Batch, type TrainerConfig } from '../src/native/index.js';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

beforeAll(() => {
  if (addonCandidates().some((p) => existsSync(p))) return;
  const build = resolve(root, 'native/build/trainer-standalone');
  execFileSync('cmake', ['-S', resolve(root, 'native/trainer'), '-B', build, '-G', 'Ninja', '-DCMAKE_BUILD_TYPE=Release'], { stdio: 'inherit' });
  execFileSync('ninja', ['-C', build, '-j2', 'dyntet_addon'], { stdio: 'inherit' });
});

const SIZE = 48;
const config: TrainerConfig = {
  grid_res: 16, box_min: [-8, -8, -8], box_max: [8, 8, 8], init_center: [1.2, 0, 0], init_radii: [7, 3.5, 6],
  width: SIZE, height: SIZE, hash_levels: 8, hash_log2_table: 12, hash_base_res: 4, hash_finest_res: 64,
  tex_width: 32, tex_hidden: 1, deform_width: 32, deform_hidden: 1, deform_freq: 4, cond_dim: 8,
  lr: 3e-3, lr_hash: 1e-2, lr_grid: 1e-2, w_sdf_reg_start: 0.02, w_sdf_reg_end: 0.01,
};
const RADIUS = 5;
const VIEWS = [[0, 0], [35, 10], [-35, -10], [70, 0], [-70, 5], [10, 35], [-10, -35], [120, 0]];

/** Column-major pose: yaw about y, then pitch about x, camera `dist` cm away. */
function pose(yawDeg: number, pitchDeg: number, dist: number): Float32Array {
  const y = (yawDeg * Math.PI) / 180, p = (pitchDeg * Math.PI) / 180;
  const Ry = [Math.cos(y), 0, Math.sin(y), 0, 1, 0, -Math.sin(y), 0, Math.cos(y)];
  const Rx = [1, 0, 0, 0, Math.cos(p), -Math.sin(p), 0, Math.sin(p), Math.cos(p)];
  const M = new Float32Array(16);
  for (let i = 0; i < 3; i++)
    for (let j = 0; j < 3; j++) {
      let s = 0;
      for (let k = 0; k < 3; k++) s += Rx[i * 3 + k] * Ry[k * 3 + j];
      M[j * 4 + i] = s;
    }
  M[14] = -dist;
  M[15] = 1;
  return M;
}

/** Ray-traced sphere at the origin coloured by its normal, over a flat background. */
function renderSphere(M: Float32Array, img: Float32Array, mask: Float32Array, off: number): void {
  const f = 1 / Math.tan((0.5 * 63 * Math.PI) / 180);
  const o = [0, 1, 2].map((a) => -(M[a * 4] * M[12] + M[a * 4 + 1] * M[13] + M[a * 4 + 2] * M[14]));
  for (let y = 0; y < SIZE; y++)
    for (let x = 0; x < SIZE; x++) {
      const dc = [((x + 0.5) / SIZE) * 2 - 1, 1 - ((y + 0.5) / SIZE) * 2].map((v) => v / f).concat([-1]);
      const d = [0, 1, 2].map((a) => M[a * 4] * dc[0] + M[a * 4 + 1] * dc[1] + M[a * 4 + 2] * dc[2]);
      const A = d[0] ** 2 + d[1] ** 2 + d[2] ** 2, B = 2 * (d[0] * o[0] + d[1] * o[1] + d[2] * o[2]);
      const C = o[0] ** 2 + o[1] ** 2 + o[2] ** 2 - RADIUS ** 2;
      const disc = B * B - 4 * A * C, i = off + y * SIZE + x;
      if (disc < 0) {
        img.set([0.2, 0.3, 0.4], i * 3);
        mask[i] = 0;
      } else {
        const t = (-B - Math.sqrt(disc)) / (2 * A);
        for (let a = 0; a < 3; a++) img[i * 3 + a] = 0.5 + (0.5 * (o[a] + t * d[a])) / RADIUS;
        mask[i] = 1;
      }
    }
}

function batch(frames: number, first: number): Batch {
  const HW = SIZE * SIZE;
  const images = new Float32Array(frames * HW * 3), masks = new Float32Array(frames * HW);
  const b: Batch = { frames, images, masks, poses: new Float32Array(frames * 16), windows: new Float32Array(frames * 9 * 52) };
  for (let k = 0; k < frames; k++) {
    const v = VIEWS[(first + k) % VIEWS.length];
    const M = pose(v[0], v[1], 20);
    b.poses.set(M, k * 16);
    renderSphere(M, images, masks, k * HW);
  }
  return b;
}

/** Symmetric mean distance (cm) between mesh vertices and the sphere surface. */
function chamfer(tris: Float32Array): number {
  const n = tris.length / 3;
  if (n === 0) return Infinity;
  let a = 0;
  for (let i = 0; i < n; i++) a += Math.abs(Math.hypot(tris[i * 3], tris[i * 3 + 1], tris[i * 3 + 2]) - RADIUS);
  let b = 0;
  const K = 200;
  for (let k = 0; k < K; k++) {
    const z = 1 - (2 * (k + 0.5)) / K, r = Math.sqrt(1 - z * z), ph = k * 2.39996323;
    const q = [RADIUS * r * Math.cos(ph), RADIUS * r * Math.sin(ph), RADIUS * z];
    let best = Infinity;
    for (let i = 0; i < n; i++)
      best = Math.min(best, (tris[i * 3] - q[0]) ** 2 + (tris[i * 3 + 1] - q[1]) ** 2 + (tris[i * 3 + 2] - q[2]) ** 2);
    b += Math.sqrt(best);
  }
  return 0.5 * (a / n + b / K);
}

const bytesEqual = (a: Uint8Array, b: Uint8Array) => a.length === b.length && Buffer.from(a).equals(Buffer.from(b));
const floatsEqual = (a: Float32Array, b: Float32Array) =>
  bytesEqual(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), new Uint8Array(b.buffer, b.byteOffset, b.byteLength));

describe('native trainer (CPU)', () => {
  it('reports its backends', () => {
    const b = backends();
    expect(b.cpu).toBe(true);
    if (!b.cudaUsable) expect(b.cudaError.length).toBeGreaterThan(0);
  });

  it('takes deterministic fixed-seed steps', () => {
    const a = createTrainer(config), b = createTrainer(config);
    for (let k = 0; k < 3; k++) {
      const bt = batch(2, 2 * k);
      const la = a.step(bt), lb = b.step(bt);
      expect(la).toEqual(lb);
      expect(la.triangles).toBeGreaterThan(0);
      expect(la.coveredPixels).toBeGreaterThan(0);
    }
    expect(floatsEqual(a.getParameters().data, b.getParameters().data)).toBe(true);
    const c = createTrainer({ ...config, seed: 7 });
    expect(floatsEqual(a.getParameters().data, c.getParameters().data)).toBe(false);
  });

  it('restores checkpoints exactly and continues bit for bit', () => {
    const a = createTrainer(config);
    for (let k = 0; k < 3; k++) a.step(batch(2, k));
    const blob = a.saveCheckpoint();
    const b = createTrainer({ ...config, grid_res: 8 });
    b.loadCheckpoint(blob);
    expect(b.steps).toBe(3);
    expect(b.config().grid_res).toBe(16);
    expect(bytesEqual(b.saveCheckpoint(), blob)).toBe(true);
    for (let k = 3; k < 6; k++) expect(b.step(batch(2, k))).toEqual(a.step(batch(2, k)));
    expect(floatsEqual(a.getParameters().data, b.getParameters().data)).toBe(true);
    const bad = blob.slice();
    bad[bad.length >> 1] ^= 1;
    expect(() => b.loadCheckpoint(bad)).toThrow(/checksum/);
    expect(() => b.loadCheckpoint(new Uint8Array(4))).toThrow(/not a dyntet checkpoint/);
  });

  it('learns an analytic sphere: image loss and chamfer distance fall', () => {
    const t = createTrainer(config);
    const before = chamfer(t.extractMesh());
    let first = 0, last = 0;
    const steps = 160;
    for (let k = 0; k < steps; k++) {
      const l = t.step(batch(4, 4 * k));
      if (k < 10) first += l.photo + l.silhouette;
      if (k >= steps - 10) last += l.photo + l.silhouette;
    }
    const after = chamfer(t.extractMesh());
    console.log(`sphere: image loss ${(first / 10).toFixed(4)} -> ${(last / 10).toFixed(4)}, chamfer ${before.toFixed(3)} -> ${after.toFixed(3)} cm`);
    expect(last).toBeLessThan(0.5 * first);
    expect(after).toBeLessThan(0.6 * before);
    const r = t.render({ pose: pose(0, 0, 20), window: new Float32Array(9 * 52) });
    expect(r.rgb.length).toBe(SIZE * SIZE * 3);
    const centre = (SIZE / 2) * SIZE + SIZE / 2;
    expect(r.coverage[centre]).toBeCloseTo(1, 3);
    expect(r.coverage[0]).toBe(0);
    const p = t.getParameters();
    expect(p.layout.map((x) => x.name)).toEqual(['sdf', 'elastic', 'condition', 'deform', 'hashgrid', 'texture']);
    expect(p.layout.reduce((s, x) => s + x.count, 0)).toBe(p.data.length);
  });

  it('gives clear errors for bad input and for CUDA without a GPU', () => {
    const t = createTrainer(config);
    expect(() => t.step({ ...batch(1, 0), images: new Float32Array(10) })).toThrow(/batch\.images must hold/);
    expect(() => createTrainer({ ...config, tex_width: 1000 })).toThrow(/tex_width/);
    expect(() => createTrainer({ ...config, bogus: 1 } as TrainerConfig)).toThrow(/unknown config key 'bogus'/);
    if (!backends().cudaUsable)
      expect(() => createTrainer(config, { device: 'cuda' })).toThrow(/CUDA backend requested but/);
  });
});
