/**
 * CPU-side loops of playback over coefficient tracks and quantised tables. The resampling,
 * smoothing and dequantisation run in the AssemblyScript SIMD twins (wasm/as/loops.ts), which beat
 * plain TypeScript even with the copies into and out of wasm memory (bench/player_cpu_loops.mjs,
 * docs/BENCHMARKS.md); one instance serves these calls, its memory reset on each.
 */
import { loopsInstance, type LoopsWasm } from './wasm/loops.js';

let shared: LoopsWasm | null = null;
function loops(): LoopsWasm {
  shared ??= loopsInstance();
  shared.reset();
  return shared;
}

/** Linear resampling of a frame-major track (channels per frame) from fpsIn to fpsOut. */
export function resampleTrack(src: Float32Array, channels: number, fpsIn: number, fpsOut: number): Float32Array {
  const nIn = src.length / channels;
  const nOut = Math.max(1, Math.floor(((nIn - 1) * fpsOut) / fpsIn) + 1);
  const w = loops();
  const ps = w.alloc(src.byteLength), pd = w.alloc(nOut * channels * 4);
  new Float32Array(w.memory.buffer, ps, src.length).set(src);
  w.resampleTrack(ps, nIn, channels, fpsIn, fpsOut, pd, nOut);
  return new Float32Array(w.memory.buffer, pd, nOut * channels).slice();
}

/** One-pole smoothing in place: y[t] = y[t-1] + alpha (x[t] - y[t-1]), per channel. */
export function smoothTrack(track: Float32Array, channels: number, alpha: number): void {
  const w = loops();
  const p = w.alloc(track.byteLength);
  new Float32Array(w.memory.buffer, p, track.length).set(track);
  w.smoothTrack(p, Math.floor(track.length / channels), channels, alpha);
  track.set(new Float32Array(w.memory.buffer, p, track.length));
}

/** Unpacks 16-bit quantised values: dst[i] = offset + scale * src[i]. */
export function dequantize16(src: Uint16Array, scale: number, offset: number, dst: Float32Array): void {
  const w = loops();
  const ps = w.alloc(src.byteLength), pd = w.alloc(src.length * 4);
  new Uint16Array(w.memory.buffer, ps, src.length).set(src);
  w.dequantize16(ps, src.length, scale, offset, pd);
  dst.set(new Float32Array(w.memory.buffer, pd, src.length));
}

/** The condition window of frame t (model.h): frames clamp(t + j - (W-1)/2, 0, n-1). */
export function conditionWindowInto(track: Float32Array, t: number, window: number, out: Float32Array): void {
  const n = track.length / 52;
  const half = (window - 1) >> 1;
  for (let j = 0; j < window; j++) {
    const f = Math.min(Math.max(t + j - half, 0), n - 1);
    out.set(track.subarray(f * 52, f * 52 + 52), j * 52);
  }
}

/**
 * Baked deltas kept in their stored basis form (the BAKE chunk's K > 0 form):
 * deltas(f) = mean + sum_k weights[f * size + k] * vectors[k], each vector active x 4 floats.
 * A clip of F frames costs (F + 1 + size) x ... instead of F x active x 4 floats.
 */
export interface BakedBasis {
  size: number;
  mean: Float32Array;
  vectors: Float32Array;
  weights: Float32Array;
}

/** Writes frame f of a basis into out (active x 4 floats): the per-frame CPU cost of a basis clip. */
export function expandBakedFrame(b: BakedBasis, f: number, out: Float32Array): void {
  const n = out.length;
  out.set(b.mean.subarray(0, n));
  for (let k = 0; k < b.size; k++) {
    const w = b.weights[f * b.size + k];
    if (w === 0) continue;
    const v = b.vectors.subarray(k * n, (k + 1) * n);
    for (let i = 0; i < n; i++) out[i] += w * v[i];
  }
}
