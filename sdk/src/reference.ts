// The CPU reference renderer (native/core/render_ref, compiled to WebAssembly) behind a small
// typed wrapper: the ground truth the WebGPU player's frames are compared with, and the renderer
// of the demo when there is no GPU. Not part of the player's core entry: import it from its own
// entry point so pages that only play never load it.
import type { AssetBakedClip, AssetClip } from './asset.js';
import { NUM_BLENDSHAPES, POSE_SIZE, type CoefficientFrame } from './coefficients.js';

// The exports of the emscripten module that holds render_ref_capi.cpp (the names it declares).
export interface ReferenceWasm {
  HEAPU8: Uint8Array;
  _malloc(bytes: number): number;
  _free(ptr: number): void;
  _dt_ref_open(bytes: number, size: number): number;
  _dt_ref_error(handle: number): number;
  _dt_ref_width(handle: number): number;
  _dt_ref_height(handle: number): number;
  _dt_ref_window(handle: number): number;
  _dt_ref_active(handle: number): number;
  _dt_ref_render(handle: number, window: number, pose: number, baked: number, background: number, rgba: number): number;
  _dt_ref_close(handle: number): void;
}

export type ReferenceErrorCode = 'OPEN_FAILED' | 'RENDER_FAILED' | 'BAD_INPUT' | 'DISPOSED';

export class ReferenceRendererError extends Error {
  readonly code: ReferenceErrorCode;
  constructor(code: ReferenceErrorCode, message: string) {
    super(message);
    this.name = 'ReferenceRendererError';
    this.code = code;
  }
}

export interface ReferenceFrameInput {
  // window x 52 blendshapes (frame-major), or the coefficient frames of the window; omitted: neutral.
  window?: Float32Array | readonly CoefficientFrame[];
  // Face -> camera, 16 floats column-major.
  pose: Float32Array | readonly number[];
  // Baked deltas of this frame: activeCount x (dx, dy, dz, dsdf), replacing the deformation MLP.
  baked?: Float32Array;
  // width x height x 3 floats in [0, 1]; omitted: the asset's plate, else black.
  background?: Float32Array;
}

export interface ReferenceImage {
  width: number;
  height: number;
  // RGBA8: composited colour, alpha = antialiased coverage.
  data: Uint8ClampedArray<ArrayBuffer>;
}

// The condition window of frame t of a track (model.h): frames clamp(t + j - (W-1)/2, 0, n-1).
export function conditionWindow(track: readonly CoefficientFrame[], t: number, window: number): Float32Array {
  if (track.length === 0) throw new ReferenceRendererError('BAD_INPUT', 'conditionWindow: the track has no frames');
  const out = new Float32Array(window * NUM_BLENDSHAPES);
  const half = Math.floor((window - 1) / 2);
  for (let j = 0; j < window; ++j) {
    const f = Math.min(Math.max(t + j - half, 0), track.length - 1);
    out.set(track[f].blendshapes.subarray(0, NUM_BLENDSHAPES), j * NUM_BLENDSHAPES);
  }
  return out;
}

function readCString(heap: Uint8Array, ptr: number): string {
  let end = ptr;
  while (heap[end] !== 0) ++end;
  return new TextDecoder().decode(heap.subarray(ptr, end));
}

export class ReferenceRenderer {
  readonly width: number;
  readonly height: number;
  // Frames of blendshapes in a condition window.
  readonly window: number;
  // Active grid vertices (baked frames hold 4 floats per active vertex).
  readonly activeCount: number;
  #wasm: ReferenceWasm;
  #handle: number;

  private constructor(wasm: ReferenceWasm, handle: number) {
    this.#wasm = wasm;
    this.#handle = handle;
    this.width = wasm._dt_ref_width(handle);
    this.height = wasm._dt_ref_height(handle);
    this.window = wasm._dt_ref_window(handle);
    this.activeCount = wasm._dt_ref_active(handle);
  }

  // Decodes and validates a .dyntet file; throws OPEN_FAILED with the reader's message.
  static open(wasm: ReferenceWasm, bytes: Uint8Array): ReferenceRenderer {
    const ptr = wasm._malloc(Math.max(bytes.length, 1));
    if (!ptr) throw new ReferenceRendererError('OPEN_FAILED', 'out of WebAssembly memory for the asset bytes');
    wasm.HEAPU8.set(bytes, ptr);
    const handle = wasm._dt_ref_open(ptr, bytes.length);
    wasm._free(ptr);
    if (!handle) throw new ReferenceRendererError('OPEN_FAILED', readCString(wasm.HEAPU8, wasm._dt_ref_error(0)));
    return new ReferenceRenderer(wasm, handle);
  }

  /**
   * The input of frame t of an asset clip (decodeAsset's `clips[i]`): the frame's condition window
   * (model.h's clamp rule over the clip), its pose and, when `baked` (the clip's entry of
   * `asset.baked`) is given, the frame's baked deltas, which then replace the deformation MLP as
   * the player does when it plays a baked clip.
   */
  clipFrameInput(clip: AssetClip, t: number, baked?: AssetBakedClip | null): ReferenceFrameInput {
    const per = NUM_BLENDSHAPES + POSE_SIZE;
    if (!Number.isInteger(t) || t < 0 || t >= clip.frames || clip.coefficients.length !== clip.frames * per)
      throw new ReferenceRendererError('BAD_INPUT', `frame ${t} is not a frame of clip "${clip.name}" (${clip.frames} frames)`);
    const window = new Float32Array(this.window * NUM_BLENDSHAPES);
    const half = Math.floor((this.window - 1) / 2);
    for (let j = 0; j < this.window; ++j) {
      const f = Math.min(Math.max(t + j - half, 0), clip.frames - 1);
      window.set(clip.coefficients.subarray(f * per, f * per + NUM_BLENDSHAPES), j * NUM_BLENDSHAPES);
    }
    const pose = clip.coefficients.slice(t * per + NUM_BLENDSHAPES, (t + 1) * per);
    if (!baked) return { window, pose };
    const n = this.activeCount * 4;
    if (baked.clip !== clip.name || baked.frames !== clip.frames || baked.deltas.length !== baked.frames * n)
      throw new ReferenceRendererError('BAD_INPUT', `baked deltas of "${baked.clip}" (${baked.frames} frames) do not belong to clip "${clip.name}" of this asset`);
    return { window, pose, baked: baked.deltas.subarray(t * n, (t + 1) * n) };
  }

  render(input: ReferenceFrameInput): ReferenceImage {
    const w = this.#wasm;
    if (!this.#handle) throw new ReferenceRendererError('DISPOSED', 'render() after dispose()');
    const pose = Float32Array.from(input.pose);
    if (pose.length !== POSE_SIZE) throw new ReferenceRendererError('BAD_INPUT', `pose must have ${POSE_SIZE} values, got ${pose.length}`);
    let win: Float32Array | undefined;
    if (input.window instanceof Float32Array) win = input.window;
    else if (input.window) {
      if (input.window.length !== this.window)
        throw new ReferenceRendererError('BAD_INPUT', `window must hold ${this.window} coefficient frames, got ${input.window.length}`);
      win = conditionWindow(input.window, Math.floor((this.window - 1) / 2), this.window);
    }
    if (win && win.length !== this.window * NUM_BLENDSHAPES)
      throw new ReferenceRendererError('BAD_INPUT', `window must have ${this.window} x ${NUM_BLENDSHAPES} values, got ${win.length}`);
    if (input.baked && input.baked.length !== this.activeCount * 4)
      throw new ReferenceRendererError('BAD_INPUT', `baked deltas must have ${this.activeCount} x 4 values, got ${input.baked.length}`);
    const pixels = this.width * this.height;
    if (input.background && input.background.length !== pixels * 3)
      throw new ReferenceRendererError('BAD_INPUT', `background must have ${this.width} x ${this.height} x 3 values, got ${input.background.length}`);
    // One allocation for every input and the output, freed before returning.
    const parts = [win, pose, input.baked, input.background];
    const bytes = parts.reduce((n, p) => n + (p ? p.byteLength : 0), 0) + pixels * 4;
    const base = w._malloc(bytes);
    if (!base) throw new ReferenceRendererError('RENDER_FAILED', 'out of WebAssembly memory for the frame');
    try {
      let at = base;
      const ptrs = parts.map((p) => {
        if (!p) return 0;
        const ptr = at;
        w.HEAPU8.set(new Uint8Array(p.buffer, p.byteOffset, p.byteLength), ptr);
        at += p.byteLength;
        return ptr;
      });
      const out = at;
      const rc = w._dt_ref_render(this.#handle, ptrs[0], ptrs[1], ptrs[2], ptrs[3], out);
      if (rc !== 0) throw new ReferenceRendererError('RENDER_FAILED', readCString(w.HEAPU8, w._dt_ref_error(this.#handle)));
      // Copy out: the heap may grow (and move) on the next allocation.
      return { width: this.width, height: this.height, data: new Uint8ClampedArray(w.HEAPU8.slice(out, out + pixels * 4).buffer) };
    } finally {
      w._free(base);
    }
  }

  dispose(): void {
    if (this.#handle) this.#wasm._dt_ref_close(this.#handle);
    this.#handle = 0;
  }
}
