/**
 * CPU-side loops of playback over coefficient tracks and quantised tables, in plain TypeScript.
 * bench/player_cpu_loops.mjs measures each against its AssemblyScript twin (wasm/as/loops.ts);
 * the player uses these because they won or tied (see docs/BENCHMARKS.md).
 */

/** Linear resampling of a frame-major track (channels per frame) from fpsIn to fpsOut. */
export function resampleTrack(src: Float32Array, channels: number, fpsIn: number, fpsOut: number): Float32Array {
  const nIn = src.length / channels;
  const nOut = Math.max(1, Math.floor(((nIn - 1) * fpsOut) / fpsIn) + 1);
  const out = new Float32Array(nOut * channels);
  for (let f = 0; f < nOut; f++) {
    const x = (f * fpsIn) / fpsOut;
    const i0 = Math.min(Math.floor(x), nIn - 1);
    const i1 = Math.min(i0 + 1, nIn - 1);
    const w = x - i0;
    const a = i0 * channels;
    const b = i1 * channels;
    const o = f * channels;
    for (let c = 0; c < channels; c++) out[o + c] = src[a + c] + w * (src[b + c] - src[a + c]);
  }
  return out;
}

/** One-pole smoothing in place: y[t] = y[t-1] + alpha (x[t] - y[t-1]), per channel. */
export function smoothTrack(track: Float32Array, channels: number, alpha: number): void {
  for (let i = channels; i < track.length; i++) track[i] = track[i - channels] + alpha * (track[i] - track[i - channels]);
}

/** Unpacks 16-bit quantised values: dst[i] = offset + scale * src[i]. */
export function dequantize16(src: Uint16Array, scale: number, offset: number, dst: Float32Array): void {
  const s = Math.fround(scale);
  const o = Math.fround(offset);
  for (let i = 0; i < src.length; i++) dst[i] = o + s * src[i];
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
