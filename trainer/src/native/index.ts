/**
 * Typed front of the native trainer addon (native/addon). Whole typed arrays cross the boundary
 * once per call; the training step itself runs natively on the CPU or CUDA backend.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

/** Number of blendshapes per coefficient frame (MediaPipe order). */
export const NUM_BLENDSHAPES = 52;

/** Scalar config keys; see docs/training.md for meanings and defaults. */
export type ScalarConfigKey =
  | 'grid_res' | 'init_elastic' | 'active_band_cells' | 'width' | 'height' | 'fovy_deg' | 'cond_window' | 'cond_dim'
  | 'deform_freq' | 'deform_width' | 'deform_hidden' | 'sdf_delta_scale' | 'freeze_sdf_delta' | 'deform_rigid_steps' | 'deform_ramp_steps' | 'texture_moves_geometry' | 'texture_condition' | 'hash_levels'
  | 'hash_features' | 'hash_log2_table' | 'hash_base_res' | 'hash_finest_res' | 'tex_width' | 'tex_hidden'
  | 'w_photo' | 'w_silhouette' | 'w_ssim' | 'w_box' | 'w_prior' | 'prior_steps' | 'w_landmark_motion' | 'landmark_motion_steps' | 'w_elastic' | 'max_elastic'
  | 'w_sdf_reg_start' | 'w_sdf_reg_end' | 'sdf_reg_steps' | 'lr' | 'lr_hash' | 'lr_grid' | 'lr_decay_steps'
  | 'lr_floor' | 'adam_beta1' | 'adam_beta2' | 'adam_eps' | 'max_triangles' | 'pose_frames' | 'pose_start'
  | 'lr_pose_rotation' | 'lr_pose_translation' | 'w_pose_reg' | 'seed';
export type Vec3ConfigKey = 'box_min' | 'box_max' | 'init_center' | 'init_radii';

/** Training configuration: any subset; missing keys take the native defaults. */
export type TrainerConfig = Partial<Record<ScalarConfigKey, number> & Record<Vec3ConfigKey, readonly [number, number, number]>>;
/** The complete configuration as the native side reports it (vectors as arrays). */
export type ResolvedConfig = Record<ScalarConfigKey, number> & Record<Vec3ConfigKey, [number, number, number]>;

export type Device = 'cpu' | 'cuda';

/** One batch of `frames` frames; sizes follow the trainer's config (width, height, cond_window). */
export interface Batch {
  frames: number;
  /** frames x height x width x 3, RGB in [0,1]; or 8-bit values (v / 255, converted natively: 4x less to upload). */
  images: Float32Array | Uint8Array;
  /** frames x height x width head mask in [0,1]; or 8-bit values like images. */
  masks: Float32Array | Uint8Array;
  /** frames x 16 column-major face->camera poses (cm). */
  poses: Float32Array;
  /** frames x cond_window x 52 blendshape windows. */
  windows: Float32Array;
  /** frames x 3 x 4 pixel boxes (mouth, left eye, right eye: x0, y0, x1, y1). */
  boxes?: Float32Array;
  /** N x 3 canonical points of the landmark mesh, for the early geometric prior (and the rest positions of the motion prior). */
  priorPoints?: Float32Array;
  /** frames x N x 3: where each frame's tracker put those points (canonical space, cm; NaN: unknown), for the landmark motion prior (w_landmark_motion). */
  motionTargets?: Float32Array;
  /** frames indices in [0, pose_frames): whose learned pose correction applies (pose refinement). */
  frameIds?: Int32Array;
}

/** Weighted loss terms of one step, plus what was rendered. */
export interface StepLosses {
  total: number; photo: number; silhouette: number; ssim: number; box: number; prior: number; elastic: number; sdfReg: number;
  /** The pull of the pose corrections towards the tracked poses (0 without pose refinement). */
  poseReg: number;
  /** The landmark motion prior (0 when off). */
  motion: number;
  triangles: number; coveredPixels: number;
  /** 1 when the update was skipped because a gradient was NaN/Inf (the step still counts). */
  skipped: number;
}

export interface RenderInput { pose: Float32Array; window: Float32Array; background?: Float32Array }
export interface RenderOutput { rgb: Float32Array; coverage: Float32Array; width: number; height: number }
export interface ParameterBlock { name: string; offset: number; count: number }
export interface Parameters { data: Float32Array; layout: ParameterBlock[] }
export interface BackendReport { cpu: boolean; cudaCompiled: boolean; cudaUsable: boolean; cudaError: string; cudaDevice: string }

/** A coefficient track to store in the asset: frames x 68 (52 blendshapes, then the 16 pose values). */
export interface ExportClip { name: string; fps: number; coefficients: Float32Array; /** Also store per-frame deltas (default true). */ bake?: boolean }
/** Plate encodings of the format: 0 raw RGBA8, 1 PNG, 2 JPEG. */
export interface ExportPlate { encoding: 0 | 1 | 2; width: number; height: number; bytes: Uint8Array }
export interface ExportOptions {
  name: string;
  /** JSON object members without braces, appended to the metadata (attribution, source, ...). */
  extraJson?: string;
  /** Largest file size; the exporter lowers precision tier by tier until it fits (0: no limit). */
  budgetBytes: number;
  /** Most PCA components of the baked deltas (0: no baked deltas). */
  maxBasis?: number;
  clips: ExportClip[];
  plate?: ExportPlate;
}
export interface ExportReport {
  tier: number; tierDescription: string; totalBytes: number; activeVertices: number;
  /** PCA components kept per baked clip, and the error of the decoded deltas against the trainer's (cm). */
  basis: number; bakeRms: number; bakeMax: number;
  chunks: { type: string; label: string; bytes: number }[];
}

interface AddonTrainer {
  step(b: Batch): StepLosses;
  render(r: RenderInput): RenderOutput;
  saveCheckpoint(): Uint8Array;
  loadCheckpoint(b: Uint8Array): void;
  getParameters(): Parameters;
  config(): Record<string, number>;
  extractMesh(window?: Float32Array): Float32Array;
  stepCount(): number;
  exportAsset(o: ExportOptions): { bytes: Uint8Array; report: ExportReport };
  startFromMasks(o: StartShapeInput): number;
}

/** Head masks (frames x height x width bytes, the trainer's size) and their poses (frames x 16). */
export interface StartShapeInput {
  frames: number;
  masks: Uint8Array;
  poses: Float32Array;
  /** A vertex is inside when inside the mask in at least this fraction of the frames that see it (default 0.9). */
  vote?: number;
  /** The bounding ellipsoid's x and y radii are init_radii times this (default 1.3); depth is init_radii's. */
  expand?: number;
}
interface Addon {
  Trainer: new (config: Record<string, number>, device: Device) => AddonTrainer;
  backends(): BackendReport;
  defaultConfig(): Record<string, number>;
}

/** The addon could not be found or loaded: the message names the build command. */
export class NativeAddonError extends Error {
  override name = 'NativeAddonError';
}

const BUILD_HINT =
  'build it with `npm run build:native`, or standalone: `cmake -S native/trainer -B native/build/trainer-standalone -G Ninja && ninja -C native/build/trainer-standalone` ' +
  '(add -DDYNTET_CUDA=ON for the CUDA backend), or point DYNTET_ADDON at a dyntet_addon.node';

/** Where the addon is looked for, in order. */
export function addonCandidates(): string[] {
  const here = dirname(fileURLToPath(import.meta.url));
  const root = resolve(here, '..', '..', '..');
  const list: string[] = [];
  if (process.env.DYNTET_ADDON) list.push(resolve(process.env.DYNTET_ADDON));
  for (const d of ['native/build', 'native/build-cuda', 'native/build/trainer-cuda', 'native/build/trainer-standalone'])
    list.push(resolve(root, d, 'dyntet_addon.node'));
  return list;
}

let cached: Addon | undefined;

/** Loads the addon once; throws NativeAddonError naming the build command when it is missing. */
export function loadAddon(): Addon {
  if (cached) return cached;
  const candidates = addonCandidates();
  const found = candidates.find((p) => existsSync(p));
  if (!found) throw new NativeAddonError(`dyntet native addon not found (looked in ${candidates.join(', ')}); ${BUILD_HINT}`);
  try {
    cached = createRequire(import.meta.url)(found) as Addon;
  } catch (e) {
    throw new NativeAddonError(`dyntet native addon at ${found} failed to load: ${(e as Error).message}; rebuild it: ${BUILD_HINT}`);
  }
  return cached;
}

/** Which backends the addon was built with, and whether a CUDA GPU is usable. */
export function backends(): BackendReport {
  return loadAddon().backends();
}

const VEC3: Vec3ConfigKey[] = ['box_min', 'box_max', 'init_center', 'init_radii'];

function flattenConfig(config: TrainerConfig): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(config)) {
    if (v === undefined) continue;
    if ((VEC3 as string[]).includes(k)) {
      const a = v as readonly number[];
      if (!Array.isArray(a) || a.length !== 3) throw new TypeError(`config.${k} must be an array of 3 numbers`);
      a.forEach((x, i) => (out[`${k}.${i}`] = x));
    } else {
      out[k] = v as number;
    }
  }
  return out;
}

function unflattenConfig(flat: Record<string, number>): ResolvedConfig {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(flat)) {
    const m = /^(\w+)\.(\d)$/.exec(k);
    if (m) ((out[m[1]] ??= [0, 0, 0]) as number[])[Number(m[2])] = v;
    else out[k] = v;
  }
  return out as ResolvedConfig;
}

/** The native defaults, for documentation and for filling UIs. */
export function defaultConfig(): ResolvedConfig {
  return unflattenConfig(loadAddon().defaultConfig());
}

/** A native trainer: parameters, optimiser state and buffers live on its device. */
export class NativeTrainer {
  readonly device: Device;
  private readonly t: AddonTrainer;

  constructor(config: TrainerConfig, device: Device) {
    this.device = device;
    this.t = new (loadAddon().Trainer)(flattenConfig(config), device);
  }
  /** One full training step (forward, losses, backward, Adam) on a batch. */
  step(batch: Batch): StepLosses { return this.t.step(batch); }
  /** Renders a frame for validation: RGB over `background` (black when absent) and coverage. */
  render(input: RenderInput): RenderOutput { return this.t.render(input); }
  /** A versioned binary blob of config, parameters, Adam state, step and RNG state. */
  saveCheckpoint(): Uint8Array { return new Uint8Array(this.t.saveCheckpoint()); }
  /** Restores a blob from saveCheckpoint() exactly (config included). */
  loadCheckpoint(bytes: Uint8Array): void { this.t.loadCheckpoint(bytes); }
  /** All parameters as one flat array with named blocks, for export. */
  getParameters(): Parameters { return this.t.getParameters(); }
  /** The resolved configuration. */
  config(): ResolvedConfig { return unflattenConfig(this.t.config()); }
  /** The surface for a coefficient window (neutral when absent): 9 floats per triangle, canonical cm. */
  extractMesh(window?: Float32Array): Float32Array { return this.t.extractMesh(window); }
  /** Bakes the model into .dyntet bytes (docs/asset-format.md) within a byte budget. */
  exportAsset(options: ExportOptions): { bytes: Uint8Array; report: ExportReport } { return this.t.exportAsset(options); }
  /**
   * Replaces the start ellipsoid with the visual hull of the head masks, bounded in depth
   * (native/trainer/start_shape.h). Before the first step only. Returns the grid vertices inside.
   */
  startFromMasks(input: StartShapeInput): number { return this.t.startFromMasks(input); }
  /** Steps taken (restored by loadCheckpoint). */
  get steps(): number { return this.t.stepCount(); }
}

/** Creates a trainer; a CUDA request without a usable GPU throws an Error saying so. */
export function createTrainer(config: TrainerConfig = {}, options: { device?: Device } = {}): NativeTrainer {
  const device = options.device ?? 'cpu';
  if (device !== 'cpu' && device !== 'cuda') throw new TypeError(`device must be 'cpu' or 'cuda', got '${String(device)}'`);
  return new NativeTrainer(config, device);
}
