// The asset decoder's WebAssembly module (native/core/asset_capi.cpp built by wasm/build.mjs),
// instantiated once per page from bytes inlined in the bundle: no fetch, no URL resolution.
import createModule from '../../../wasm/out/dyntet_core.mjs';
import wasmBytes from '../../../wasm/out/dyntet_core.wasm';

/** The exports the decoder uses (names as declared in asset_capi.cpp). */
export interface CoreWasm {
  HEAPU8: Uint8Array;
  HEAPF32: Float32Array;
  HEAPU32: Uint32Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _dt_asset_open(bytes: number, size: number): number;
  _dt_asset_status(h: number): number;
  _dt_asset_error_name(h: number): number;
  _dt_asset_message(h: number): number;
  _dt_asset_metadata(h: number): number;
  _dt_asset_tensor_count(h: number, which: number): number;
  _dt_asset_tensor_data(h: number, which: number): number;
  _dt_asset_tensor_dtype(h: number, which: number): number;
  _dt_asset_active_count(h: number): number;
  _dt_asset_active_data(h: number): number;
  _dt_asset_clip_count(h: number): number;
  _dt_asset_clip_name(h: number, i: number): number;
  _dt_asset_clip_fps(h: number, i: number): number;
  _dt_asset_clip_frames(h: number, i: number): number;
  _dt_asset_clip_data(h: number, i: number): number;
  _dt_asset_baked_count(h: number): number;
  _dt_asset_baked_clip(h: number, i: number): number;
  _dt_asset_baked_frames(h: number, i: number): number;
  _dt_asset_baked_data(h: number, i: number): number;
  _dt_asset_baked_basis_size(h: number, i: number): number;
  _dt_asset_baked_mean(h: number, i: number): number;
  _dt_asset_baked_basis(h: number, i: number): number;
  _dt_asset_baked_weights(h: number, i: number): number;
  _dt_asset_has_plate(h: number): number;
  _dt_asset_plate_encoding(h: number): number;
  _dt_asset_plate_width(h: number): number;
  _dt_asset_plate_height(h: number): number;
  _dt_asset_plate_size(h: number): number;
  _dt_asset_plate_data(h: number): number;
  _dt_asset_close(h: number): void;
}

let instance: Promise<CoreWasm> | null = null;

export function coreWasm(): Promise<CoreWasm> {
  instance ??= createModule({ wasmBinary: wasmBytes }) as Promise<CoreWasm>;
  return instance;
}

const utf8 = new TextDecoder();

/** A NUL-terminated UTF-8 string at `ptr` in the module's memory. */
export function readCString(heap: Uint8Array, ptr: number): string {
  let end = ptr;
  while (heap[end] !== 0) end++;
  return utf8.decode(heap.subarray(ptr, end));
}
