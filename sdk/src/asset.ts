/**
 * Decoding .dyntet assets (docs/asset-format.md) with the shared C++ reader compiled to
 * WebAssembly: every size and offset is validated there before anything is allocated, and a
 * damaged file becomes an AssetError with a code. This module also registers the decoder with the
 * Player, so `player.load(url)` understands .dyntet files.
 */
import { NUM_BLENDSHAPES, POSE_SIZE } from './coefficients.js';
import { AssetError, type AssetErrorCode } from './errors.js';
import type { ConditionConfig, HashGridConfig, MlpConfig, ModelClip, ModelData } from './model.js';
import { setDefaultDecoder } from './player.js';
import { expandBakedFrame, type BakedBasis } from './tracks.js';
import { coreWasm, readCString } from './wasm/core.js';

export { AssetError, type AssetErrorCode } from './errors.js';

/** The metadata JSON of an asset (the fields every asset has; it may hold more). */
export interface AssetMetadata {
  format: 'dyntet';
  name: string;
  frame: { width: number; height: number };
  camera: { fovyDeg: number; znear: number; zfar: number };
  box: { min: [number, number, number]; max: [number, number, number] };
  grid: { res: number; activeBand: number };
  texture: { grid: HashGridConfig; mlp: MlpConfig };
  deform: { nFreq: number; mlp: MlpConfig; sdfDeltaScale: number; freezeSdfDelta: boolean };
  condition: ConditionConfig;
  [extra: string]: unknown;
}

export interface AssetClip {
  name: string;
  fps: number;
  frames: number;
  /** frames x 68: 52 blendshapes then the 16 pose values, frame-major. */
  coefficients: Float32Array;
}

export interface AssetBakedClip {
  /** Name of the clip the deltas belong to. */
  clip: string;
  frames: number;
  /** The stored basis form (K > 0), or null when the asset stores the deltas directly. */
  basis: BakedBasis | null;
  /** frames x active x 4 (dx, dy, dz, dsdf); a basis is expanded on first access (it can be large). */
  readonly deltas: Float32Array;
}

export interface AssetPlate {
  encoding: 'rgba8' | 'png' | 'jpeg';
  width: number;
  height: number;
  bytes: Uint8Array;
}

export interface Asset {
  metadata: AssetMetadata;
  /** Per grid vertex ((R+1)^3): canonical signed distance (cm, negative inside), elastic scale (cm). */
  sdf: Float32Array;
  elasticScale: Float32Array;
  /** Deformed grid vertices, strictly increasing ids. */
  active: Uint32Array;
  deformParams: Float32Array;
  conditionParams: Float32Array;
  hashTables: Float32Array;
  textureParams: Float32Array;
  clips: AssetClip[];
  baked: AssetBakedClip[];
  plate: AssetPlate | null;
}

const COEFFS = NUM_BLENDSHAPES + POSE_SIZE;
const PLATE_ENCODINGS = ['rgba8', 'png', 'jpeg'] as const;

/** Decodes and validates a .dyntet file; rejects with AssetError when it is not a usable asset. */
export async function decodeAsset(source: Uint8Array | ArrayBuffer): Promise<Asset> {
  const bytes = source instanceof Uint8Array ? source : new Uint8Array(source);
  const w = await coreWasm();
  const ptr = w._malloc(Math.max(bytes.length, 1));
  if (!ptr) throw new AssetError('SIZE_LIMIT', `the asset (${bytes.length} bytes) does not fit in WebAssembly memory`);
  let h = 0;
  try {
    w.HEAPU8.set(bytes, ptr);
    h = w._dt_asset_open(ptr, bytes.length);
  } finally {
    w._free(ptr);
  }
  if (!h) throw new AssetError('SIZE_LIMIT', 'out of WebAssembly memory while decoding the asset');
  try {
    if (w._dt_asset_status(h) !== 0)
      throw new AssetError(readCString(w.HEAPU8, w._dt_asset_error_name(h)) as AssetErrorCode, readCString(w.HEAPU8, w._dt_asset_message(h)));
    // Views are copied out: the module's memory may grow (and move) on the next allocation.
    const f32 = (p: number, n: number) => new Float32Array(w.HEAPF32.buffer.slice(p, p + n * 4));
    const tensor = (which: number) => f32(w._dt_asset_tensor_data(h, which), w._dt_asset_tensor_count(h, which));
    const metadata = JSON.parse(readCString(w.HEAPU8, w._dt_asset_metadata(h))) as AssetMetadata;
    const clips: AssetClip[] = [];
    for (let i = 0; i < w._dt_asset_clip_count(h); i++) {
      const frames = w._dt_asset_clip_frames(h, i);
      clips.push({ name: readCString(w.HEAPU8, w._dt_asset_clip_name(h, i)), fps: w._dt_asset_clip_fps(h, i), frames,
        coefficients: f32(w._dt_asset_clip_data(h, i), frames * COEFFS) });
    }
    const activeCount = w._dt_asset_active_count(h);
    const active = new Uint32Array(w.HEAPU32.buffer.slice(w._dt_asset_active_data(h), w._dt_asset_active_data(h) + activeCount * 4));
    const baked: AssetBakedClip[] = [];
    for (let i = 0; i < w._dt_asset_baked_count(h); i++) {
      const frames = w._dt_asset_baked_frames(h, i);
      const clip = readCString(w.HEAPU8, w._dt_asset_baked_clip(h, i));
      const size = w._dt_asset_baked_basis_size(h, i);
      if (size === 0) {
        baked.push({ clip, frames, basis: null, deltas: f32(w._dt_asset_baked_data(h, i), frames * activeCount * 4) });
        continue;
      }
      // The basis form stays a basis: a 4 MB asset's clip would expand to ~100 MB of floats.
      const basis: BakedBasis = { size, mean: f32(w._dt_asset_baked_mean(h, i), activeCount * 4),
        vectors: f32(w._dt_asset_baked_basis(h, i), size * activeCount * 4), weights: f32(w._dt_asset_baked_weights(h, i), frames * size) };
      let expanded: Float32Array | undefined;
      baked.push({ clip, frames, basis, get deltas() {
        if (!expanded) {
          const n = activeCount * 4;
          expanded = new Float32Array(frames * n);
          for (let f = 0; f < frames; f++) expandBakedFrame(basis, f, expanded.subarray(f * n, (f + 1) * n));
        }
        return expanded;
      } });
    }
    let plate: AssetPlate | null = null;
    if (w._dt_asset_has_plate(h)) {
      const p = w._dt_asset_plate_data(h);
      plate = { encoding: PLATE_ENCODINGS[w._dt_asset_plate_encoding(h)] ?? 'rgba8', width: w._dt_asset_plate_width(h),
        height: w._dt_asset_plate_height(h), bytes: w.HEAPU8.slice(p, p + w._dt_asset_plate_size(h)) };
    }
    return { metadata, sdf: tensor(0), elasticScale: tensor(1), deformParams: tensor(2), conditionParams: tensor(3),
      hashTables: tensor(4), textureParams: tensor(5), active, clips, baked, plate };
  } finally {
    w._dt_asset_close(h);
  }
}

/** Decodes a PNG/JPEG plate into RGBA8 with the platform's image decoder (browsers, workers). */
async function plateRgba(plate: AssetPlate): Promise<Uint8Array> {
  if (plate.encoding === 'rgba8') return plate.bytes;
  if (typeof createImageBitmap !== 'function' || typeof OffscreenCanvas !== 'function')
    throw new AssetError('BAD_ARGUMENT', `this environment cannot decode the ${plate.encoding.toUpperCase()} plate: use a browser, or export the plate as raw RGBA8`);
  const bitmap = await createImageBitmap(new Blob([plate.bytes as Uint8Array<ArrayBuffer>], { type: `image/${plate.encoding}` }));
  const ctx = new OffscreenCanvas(plate.width, plate.height).getContext('2d')!;
  ctx.drawImage(bitmap, 0, 0, plate.width, plate.height);
  return new Uint8Array(ctx.getImageData(0, 0, plate.width, plate.height).data.buffer);
}

/** The player's model from a decoded asset. */
export async function assetToModel(a: Asset): Promise<ModelData> {
  const m = a.metadata;
  const clips: ModelClip[] = a.clips.map((c) => {
    const blendshapes = new Float32Array(c.frames * NUM_BLENDSHAPES);
    const poses = new Float32Array(c.frames * POSE_SIZE);
    for (let f = 0; f < c.frames; f++) {
      blendshapes.set(c.coefficients.subarray(f * COEFFS, f * COEFFS + NUM_BLENDSHAPES), f * NUM_BLENDSHAPES);
      poses.set(c.coefficients.subarray(f * COEFFS + NUM_BLENDSHAPES, (f + 1) * COEFFS), f * POSE_SIZE);
    }
    // The clip's baked per-frame deltas (BAKE chunk), when the asset has them.
    const b = a.baked.find((x) => x.clip === c.name);
    return { name: c.name, fps: c.fps, blendshapes, poses, baked: b ? (b.basis ?? b.deltas) : null };
  });
  return {
    name: m.name, width: m.frame.width, height: m.frame.height, fovyDeg: m.camera.fovyDeg, znear: m.camera.znear, zfar: m.camera.zfar,
    boxMin: m.box.min, boxMax: m.box.max, gridRes: m.grid.res, sdf: a.sdf, elasticScale: a.elasticScale, activeBand: m.grid.activeBand,
    active: a.active, condition: m.condition, conditionParams: a.conditionParams, deformFreq: m.deform.nFreq, deformMlp: m.deform.mlp,
    deformParams: a.deformParams, sdfDeltaScale: m.deform.sdfDeltaScale, freezeSdfDelta: m.deform.freezeSdfDelta,
    textureGrid: m.texture.grid, textureMlp: m.texture.mlp, hashTables: a.hashTables, textureParams: a.textureParams,
    background: a.plate ? await plateRgba(a.plate) : null, clips,
  };
}

setDefaultDecoder(async (bytes) => assetToModel(await decodeAsset(bytes)));
