// Node-side checks of the player package that need no GPU: model bounds before any allocation,
// the CPU track loops, and the no-eval rule over the sources and the built bundle.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateModel, activeVertices, bakedSdfReach, sdfReach, surfaceCandidates } from '../src/model.js';
import { syntheticModel } from '../src/synthetic.js';
import { PlayerError } from '../src/player_error.js';
import { conditionWindowInto, dequantize16, expandBakedFrame, resampleTrack, smoothTrack } from '../src/tracks.js';

const root = join(import.meta.dirname, '..', '..');

function code(f: () => void): string {
  try {
    f();
  } catch (e) {
    expect(e).toBeInstanceOf(PlayerError);
    return (e as PlayerError).code;
  }
  return 'accepted';
}

describe('validateModel', () => {
  it('accepts the procedural avatar', () => {
    expect(code(() => validateModel(syntheticModel({ gridRes: 8 })))).toBe('accepted');
  });

  it('rejects every oversized or inconsistent declaration with ASSET_LIMIT', () => {
    const base = () => syntheticModel({ gridRes: 8, log2Table: 6, levels: 2 });
    const cases: ((m: ReturnType<typeof base>) => void)[] = [
      (m) => { m.gridRes = 100000; },
      (m) => { m.gridRes = 9; },
      (m) => { m.width = 0; },
      (m) => { m.textureMlp.width = 4096; },
      (m) => { m.textureGrid.log2Table = 40; },
      (m) => { m.deformParams = m.deformParams.subarray(1); },
      (m) => { m.boxMax = [m.boxMin[0], 1, 1]; },
      (m) => { m.fovyDeg = NaN; },
      (m) => { m.condition.conv[0].kernel = 50; },
      (m) => { m.active = Uint32Array.from([5, 3]); },
      (m) => { m.clips[0].poses = m.clips[0].poses.subarray(16); },
      (m) => { m.background = new Uint8Array(10); },
    ];
    for (const mutate of cases) {
      const m = base();
      mutate(m);
      expect(code(() => validateModel(m))).toBe('ASSET_LIMIT');
    }
  });

  it('checks the device limits with DEVICE_LIMIT', () => {
    const m = syntheticModel({ gridRes: 8 });
    const limits = { maxStorageBufferBindingSize: 1024, maxTextureDimension2D: 8192 } as GPUSupportedLimits;
    expect(code(() => validateModel(m, limits))).toBe('DEVICE_LIMIT');
  });

  it('derives the active list from the band', () => {
    const m = syntheticModel({ gridRes: 8 });
    const a = activeVertices(m);
    expect(a.length).toBeGreaterThan(0);
    expect(a.length).toBeLessThan(m.sdf.length);
    for (const v of a) expect(Math.abs(m.sdf[v])).toBeLessThanOrEqual(m.activeBand);
  });

  it('lists every cube marching may find surface in, and only those', () => {
    const m = syntheticModel({ gridRes: 12 });
    const R = m.gridRes, n = R + 1;
    // A sign change between two vertices outside the band: no corner moves, yet the cube has surface.
    m.sdf[0] = -5;
    m.sdf[1] = 5;
    const active = activeVertices(m);
    const isActive = new Uint8Array(m.sdf.length);
    for (const v of active) isActive[v] = 1;
    const reach = sdfReach(m);
    expect(reach).toBeGreaterThanOrEqual(m.sdfDeltaScale);
    const want: number[] = [];
    const corner = new Set<number>();
    for (let c = 0; c < R ** 3; c++) {
      const [i, j, k] = [c % R, Math.floor(c / R) % R, Math.floor(c / (R * R))];
      const corners = [0, 1, 2, 3, 4, 5, 6, 7].map((b) => i + (b & 1) + n * (j + ((b >> 1) & 1) + n * (k + (b >> 2))));
      const r = (v: number) => (isActive[v] ? reach : 0);
      if (corners.some((v) => m.sdf[v] - r(v) < 0) && corners.some((v) => m.sdf[v] + r(v) >= 0)) {
        want.push(c);
        for (const v of corners) if (isActive[v]) corner.add(v);
      }
    }
    const got = surfaceCandidates(m, active, reach);
    expect(Array.from(got.cubes)).toEqual(want);
    expect(got.cubes[0]).toBe(0);
    expect(got.cubes.length).toBeLessThan(R ** 3);
    expect(Array.from(got.deformed)).toEqual(Array.from(active).filter((v) => corner.has(v)));
    expect(got.deformed.length).toBeLessThan(active.length);
    // Nothing near any surface: cube 0 stands in, so the passes keep a non-empty range.
    m.sdf.fill(3);
    expect(Array.from(surfaceCandidates(m, new Uint32Array(0), reach).cubes)).toEqual([0]);
  });

  it('bounds every SDF delta a baked basis can give', () => {
    const m = syntheticModel({ gridRes: 8 });
    const na = activeVertices(m).length;
    const size = 3, frames = 5;
    const rnd = (k: number) => Float32Array.from({ length: k }, (_, i) => Math.sin(1.7 * i + 0.3) * 2);
    const basis = { size, mean: rnd(na * 4), vectors: rnd(size * na * 4), weights: rnd(frames * size) };
    m.clips[0].baked = basis;
    const reach = sdfReach(m);
    const out = new Float32Array(na * 4);
    let seen = 0;
    for (let f = 0; f < frames; f++) {
      expandBakedFrame(basis, f, out);
      for (let i = 3; i < out.length; i += 4) seen = Math.max(seen, Math.abs(out[i]));
    }
    expect(seen).toBeGreaterThan(m.sdfDeltaScale);
    expect(seen).toBeLessThanOrEqual(reach);
    expect(bakedSdfReach(basis)).toBeLessThan(2 * seen + 1);
  });
});

describe('track loops', () => {
  it('resamples linearly and keeps the ends', () => {
    const src = Float32Array.from([0, 10, 1, 11, 2, 12]); // 3 frames x 2 channels
    const out = resampleTrack(src, 2, 2, 4);
    expect(Array.from(out)).toEqual([0, 10, 0.5, 10.5, 1, 11, 1.5, 11.5, 2, 12]);
  });

  it('smooths with a one-pole filter', () => {
    const t = Float32Array.from([0, 1, 1]);
    smoothTrack(t, 1, 0.5);
    expect(Array.from(t)).toEqual([0, 0.5, 0.75]);
  });

  it('dequantises u16', () => {
    const d = new Float32Array(2);
    dequantize16(Uint16Array.from([0, 65535]), 1 / 65535, -0.5, d);
    expect(d[0]).toBe(-0.5);
    expect(d[1]).toBeCloseTo(0.5, 6);
  });

  it('builds the clamped condition window of model.h', () => {
    const track = new Float32Array(3 * 52).map((_, i) => Math.floor(i / 52));
    const w = new Float32Array(5 * 52);
    conditionWindowInto(track, 0, 5, w);
    expect([0, 1, 2, 3, 4].map((j) => w[j * 52])).toEqual([0, 0, 0, 1, 2]);
  });
});

describe('no eval', () => {
  const banned = /\beval\s*\(|new\s+Function\s*\(|\bFunction\s*\(\s*['"`]/;
  it('holds for the player sources', () => {
    for (const f of readdirSync(join(root, 'sdk', 'src')).filter((f) => f.endsWith('.ts')))
      expect(banned.test(readFileSync(join(root, 'sdk', 'src', f), 'utf8')), f).toBe(false);
  });
  it('holds for the built bundle', () => {
    const dist = join(root, 'sdk', 'dist', 'index.js');
    if (!existsSync(dist)) throw new Error('sdk/dist/index.js is missing: run npm run build:sdk first');
    expect(banned.test(readFileSync(dist, 'utf8'))).toBe(false);
  });
});
