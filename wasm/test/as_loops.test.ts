// The AssemblyScript SIMD loops (wasm/as/loops.ts) compute what the TypeScript ones in
// sdk/src/tracks.ts compute (bench/player_cpu_loops.mjs times them against each other).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { dequantize16, expandBakedFrame, smoothTrack } from '../../sdk/src/tracks.js';

const root = join(import.meta.dirname, '..', '..');
const { instance } = await WebAssembly.instantiate(readFileSync(join(root, 'wasm', 'out', 'as', 'loops.wasm')), { env: { abort: () => { throw new Error('abort'); } } });
const as = instance.exports as any;
const f32 = (ptr: number, n: number) => new Float32Array(as.memory.buffer, ptr, n);

describe('AssemblyScript loops against TypeScript', () => {
  it('expandBakedFrame: mean + weighted basis vectors, with a zero weight skipped and an odd length', () => {
    const k = 5, n = 4 * 1001 + 3, frames = 7;
    const mean = new Float32Array(n).map((_, i) => Math.sin(i) * 0.01);
    const vectors = new Float32Array(k * n).map((_, i) => Math.cos(i * 0.37) * 0.001);
    const weights = new Float32Array(frames * k).map((_, i) => (i % 4 === 1 ? 0 : Math.sin(i * 1.7)));
    const f = 3;
    const want = new Float32Array(n);
    expandBakedFrame({ size: k, mean, vectors, weights }, f, want);
    as.reset();
    const pm = as.alloc(n * 4), pb = as.alloc(k * n * 4), pw = as.alloc(k * 4), po = as.alloc(n * 4);
    f32(pm, n).set(mean); f32(pb, k * n).set(vectors); f32(pw, k).set(weights.subarray(f * k, f * k + k));
    as.expandBakedFrame(pm, pb, pw, k, n, po);
    const got = f32(po, n);
    let max = 0;
    for (let i = 0; i < n; i++) max = Math.max(max, Math.abs(got[i] - want[i]));
    expect(max).toBeLessThan(1e-7); // same operations per element, in the same order
    expect(want.some((v, i) => v !== mean[i])).toBe(true);
  });

  it('dequantize16 and smoothTrack agree', () => {
    const n = 1003;
    const q = new Uint16Array(n).map((_, i) => (i * 2654435761) >>> 16);
    const want = new Float32Array(n);
    dequantize16(q, 1 / 32768, -1, want);
    as.reset();
    const ps = as.alloc(n * 2), pd = as.alloc(n * 4);
    new Uint16Array(as.memory.buffer, ps, n).set(q);
    as.dequantize16(ps, n, 1 / 32768, -1, pd);
    expect(Array.from(f32(pd, n))).toEqual(Array.from(want));
    const track = new Float32Array(40 * 52).map((_, i) => Math.sin(i));
    const tsTrack = track.slice();
    smoothTrack(tsTrack, 52, 0.6);
    as.reset();
    const pt = as.alloc(track.length * 4);
    f32(pt, track.length).set(track);
    as.smoothTrack(pt, 40, 52, 0.6);
    let max = 0;
    for (let i = 0; i < track.length; i++) max = Math.max(max, Math.abs(f32(pt, track.length)[i] - tsTrack[i]));
    expect(max).toBeLessThan(1e-6);
  });
});
