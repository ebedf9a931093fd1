// Node-side checks of the player package that need no GPU: model bounds before any allocation,
// the CPU track loops, and the no-eval rule over the sources and the built bundle.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { validateModel, activeVertices } from '../src/model.js';
import { syntheticModel } from '../src/synthetic.js';
import { PlayerError } from '../src/player_error.js';
import { conditionWindowInto, dequantize16, resampleTrack, smoothTrack } from '../src/tracks.js';

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
