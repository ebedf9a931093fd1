// The AssemblyScript SIMD loops (wasm/as/loops.ts), inlined as bytes like the core module. Each
// caller gets its own instance, so its linear memory holds only that caller's arrays.
import loopsBytes from '../../../wasm/out/as/loops.wasm';

export interface LoopsWasm {
  memory: WebAssembly.Memory;
  alloc(bytes: number): number;
  reset(): void;
  expandBakedFrame(mean: number, basis: number, weights: number, k: number, n: number, out: number): void;
  dequantize16(src: number, n: number, scale: number, offset: number, dst: number): void;
  smoothTrack(track: number, frames: number, channels: number, alpha: number): void;
  resampleTrack(src: number, nIn: number, channels: number, fpsIn: number, fpsOut: number, dst: number, nOut: number): void;
}

let module: WebAssembly.Module | undefined;

/** A fresh instance (synchronous: the module is ~1 KB, well under browsers' sync-compile limits). */
export function loopsInstance(): LoopsWasm {
  module ??= new WebAssembly.Module(loopsBytes);
  const abort = () => { throw new Error('AssemblyScript loops: abort'); };
  return new WebAssembly.Instance(module, { env: { abort } }).exports as unknown as LoopsWasm;
}
