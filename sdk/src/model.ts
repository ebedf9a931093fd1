/**
 * The decoded model the GPU renderer consumes: configurations and float tables, already unpacked
 * from the asset's quantised chunks. Mirrors native/core/model.h (the single source of truth for
 * the math); field names follow its structs.
 */
import { PlayerError } from './player_error.js';
import type { BakedBasis } from './tracks.js';

export const ACT_NONE = 0;
export const ACT_RELU = 1;
export const ACT_LEAKY_RELU = 2;
export const ACT_SIGMOID = 3;
export const ACT_TANH = 4;

export interface MlpConfig {
  in: number;
  width: number;
  hiddenLayers: number;
  out: number;
  hiddenAct: number;
  outAct: number;
}

export interface HashGridConfig {
  levels: number;
  features: number;
  log2Table: number;
  baseRes: number;
  finestRes: number;
}

export interface Conv1dLayer {
  inCh: number;
  outCh: number;
  kernel: number;
  stride: number;
}

export interface ConditionConfig {
  window: number;
  conv: Conv1dLayer[];
  outDim: number;
}

/** A baked clip: a coefficient track the player replays through the condition encoder. */
export interface ModelClip {
  name: string;
  fps: number;
  /** frames x 52 blendshapes, frame-major. */
  blendshapes: Float32Array;
  /** frames x 16 pose values, frame-major (column-major 4x4 each). */
  poses: Float32Array;
  /**
   * Baked deformation of this clip (the asset's BAKE chunk): frames x active x 4 values, (dx, dy,
   * dz, dsdf) per active vertex in the order of the active list, either expanded or as its stored
   * basis (expanded one frame at a time while playing). When present the player uses them instead
   * of running the deformation MLP while it plays the clip.
   */
  baked?: Float32Array | BakedBasis | null;
}

export interface ModelData {
  name: string;
  /** Frame size the avatar was trained at; the camera's aspect default. */
  width: number;
  height: number;
  fovyDeg: number;
  znear: number;
  zfar: number;
  boxMin: [number, number, number];
  boxMax: [number, number, number];
  /** Grid resolution R: (R+1)^3 vertices, 6 R^3 tetrahedra (see shaders/mt_count.wgsl). */
  gridRes: number;
  /** Per grid vertex: canonical signed distance (negative inside), and elastic scale (cm). */
  sdf: Float32Array;
  elasticScale: Float32Array;
  /** Vertices with |sdf| > activeBand neither move nor change their distance. */
  activeBand: number;
  /** The deformed vertices, strictly increasing ids (the asset's list); absent: |sdf| <= activeBand. */
  active?: Uint32Array | null;
  condition: ConditionConfig;
  conditionParams: Float32Array;
  deformFreq: number;
  deformMlp: MlpConfig;
  deformParams: Float32Array;
  sdfDeltaScale: number;
  freezeSdfDelta: boolean;
  textureGrid: HashGridConfig;
  textureMlp: MlpConfig;
  /** Hash-grid tables then MLP parameters are kept separately. */
  hashTables: Float32Array;
  textureParams: Float32Array;
  /** Background plate, RGBA8, width x height; null gives a black plate. */
  background: Uint8Array | null;
  clips: ModelClip[];
}

/** Hard bounds checked before any GPU allocation; the WGSL uses fixed-size arrays that match. */
export const LIMITS = {
  maxGridRes: 192,
  maxMlpWidth: 64,
  maxHiddenLayers: 8,
  maxHashLevels: 24,
  maxHashFeatures: 4,
  maxLog2Table: 22,
  maxConditionDim: 32,
  maxConvLayers: 4,
  maxWindow: 64,
  maxConvMap: 52 * 32,
  maxFrameSide: 8192,
  maxClipFrames: 1 << 20,
};

export function mlpParamCount(c: MlpConfig): number {
  let n = 0;
  for (let k = 0; k <= c.hiddenLayers; k++) {
    const i = k === 0 ? c.in : c.width;
    const o = k === c.hiddenLayers ? c.out : c.width;
    n += o * (i + 1);
  }
  return n;
}

export function conditionConvOutLen(c: ConditionConfig, k: number): number {
  let len = c.window;
  for (let i = 0; i <= k; i++) len = Math.floor((len - c.conv[i].kernel) / c.conv[i].stride) + 1;
  return len;
}

export function conditionParamCount(c: ConditionConfig): number {
  let n = 0;
  for (const l of c.conv) n += l.outCh * l.inCh * l.kernel + l.outCh;
  const last = c.conv[c.conv.length - 1];
  const flat = last.outCh * conditionConvOutLen(c, c.conv.length - 1);
  return n + c.outDim * flat + c.outDim;
}

/** Level resolutions exactly as model.h's hashgrid_levels (double precision, same rounding). */
export function hashgridLevels(c: HashGridConfig): { res: number; dense: number }[] {
  const b = c.levels > 1 ? Math.exp((Math.log(c.finestRes) - Math.log(c.baseRes)) / (c.levels - 1)) : 1;
  const T = 2 ** c.log2Table;
  const out: { res: number; dense: number }[] = [];
  for (let l = 0; l < c.levels; l++) {
    let res = Math.floor(c.baseRes * Math.pow(b, l) + 1e-6);
    if (res < 1) res = 1;
    const n = res + 1;
    out.push({ res, dense: n * n * n <= T ? 1 : 0 });
  }
  return out;
}

function bad(what: string): never {
  throw new PlayerError('ASSET_LIMIT', `${what}; re-export the avatar with smaller settings`);
}

function intIn(name: string, v: number, lo: number, hi: number): void {
  if (!Number.isInteger(v) || v < lo || v > hi) bad(`${name} = ${v} is outside the supported range [${lo}, ${hi}]`);
}

function checkMlp(name: string, c: MlpConfig, inDim: number, outDim: number): void {
  intIn(`${name}.in`, c.in, 1, LIMITS.maxMlpWidth);
  if (c.in !== inDim) bad(`${name}.in = ${c.in} but its inputs have ${inDim} values`);
  intIn(`${name}.width`, c.width, 1, LIMITS.maxMlpWidth);
  intIn(`${name}.hiddenLayers`, c.hiddenLayers, 0, LIMITS.maxHiddenLayers);
  if (c.out !== outDim) bad(`${name}.out = ${c.out}, expected ${outDim}`);
  intIn(`${name}.hiddenAct`, c.hiddenAct, 0, 4);
  intIn(`${name}.outAct`, c.outAct, 0, 4);
}

function checkLen(name: string, a: ArrayLike<number> | null, n: number): void {
  if (!a || a.length !== n) bad(`${name} has ${a ? a.length : 0} values, expected ${n}`);
}

/**
 * Validates every size the model declares against the player's fixed bounds (and, when given, the
 * device's limits) before a single GPU buffer is created. Throws PlayerError('ASSET_LIMIT' or
 * 'DEVICE_LIMIT').
 */
export function validateModel(m: ModelData, limits?: GPUSupportedLimits): void {
  intIn('width', m.width, 1, LIMITS.maxFrameSide);
  intIn('height', m.height, 1, LIMITS.maxFrameSide);
  intIn('gridRes', m.gridRes, 1, LIMITS.maxGridRes);
  for (const v of [...m.boxMin, ...m.boxMax, m.fovyDeg, m.znear, m.zfar, m.activeBand, m.sdfDeltaScale])
    if (!Number.isFinite(v)) bad('a camera, box or scale value is not finite');
  for (let a = 0; a < 3; a++) if (!(m.boxMax[a] > m.boxMin[a])) bad(`canonical box is empty along axis ${a}`);
  if (!(m.fovyDeg > 0 && m.fovyDeg < 180)) bad(`fovyDeg = ${m.fovyDeg} is not in (0, 180)`);
  if (!(m.znear > 0 && m.zfar > m.znear)) bad('znear/zfar must satisfy 0 < znear < zfar');
  const nv = (m.gridRes + 1) ** 3;
  checkLen('sdf', m.sdf, nv);
  checkLen('elasticScale', m.elasticScale, nv);
  if (m.active) {
    if (m.active.length > nv) bad(`active list has ${m.active.length} ids for ${nv} vertices`);
    for (let i = 0; i < m.active.length; i++)
      if (m.active[i] >= nv || (i > 0 && m.active[i] <= m.active[i - 1])) bad(`active id ${m.active[i]} at ${i} is out of range or not increasing`);
  }
  const c = m.condition;
  intIn('condition.window', c.window, 1, LIMITS.maxWindow);
  intIn('condition layers', c.conv.length, 1, LIMITS.maxConvLayers);
  intIn('condition.outDim', c.outDim, 1, LIMITS.maxConditionDim);
  let ch = 52;
  let len = c.window;
  for (let k = 0; k < c.conv.length; k++) {
    const l = c.conv[k];
    if (l.inCh !== ch) bad(`condition conv ${k} takes ${l.inCh} channels, previous layer gives ${ch}`);
    intIn(`condition conv ${k} outCh`, l.outCh, 1, 256);
    intIn(`condition conv ${k} kernel`, l.kernel, 1, 64);
    intIn(`condition conv ${k} stride`, l.stride, 1, 64);
    len = Math.floor((len - l.kernel) / l.stride) + 1;
    if (len < 1) bad(`condition conv ${k} leaves no time steps`);
    if (l.outCh * len > LIMITS.maxConvMap) bad(`condition conv ${k} map is larger than ${LIMITS.maxConvMap}`);
    ch = l.outCh;
  }
  checkLen('conditionParams', m.conditionParams, conditionParamCount(c));
  intIn('deformFreq', m.deformFreq, 0, 10);
  checkMlp('deformMlp', m.deformMlp, 3 + 6 * m.deformFreq + c.outDim, 4);
  checkLen('deformParams', m.deformParams, mlpParamCount(m.deformMlp));
  const g = m.textureGrid;
  intIn('textureGrid.levels', g.levels, 1, LIMITS.maxHashLevels);
  intIn('textureGrid.features', g.features, 1, LIMITS.maxHashFeatures);
  intIn('textureGrid.log2Table', g.log2Table, 4, LIMITS.maxLog2Table);
  intIn('textureGrid.baseRes', g.baseRes, 1, 1 << 16);
  intIn('textureGrid.finestRes', g.finestRes, g.baseRes, 1 << 20);
  checkMlp('textureMlp', m.textureMlp, g.levels * g.features + c.outDim, 3);
  checkLen('hashTables', m.hashTables, g.levels * 2 ** g.log2Table * g.features);
  checkLen('textureParams', m.textureParams, mlpParamCount(m.textureMlp));
  if (m.background) checkLen('background', m.background, m.width * m.height * 4);
  let nActive = -1;
  for (const clip of m.clips) {
    if (!(clip.fps > 0 && clip.fps <= 1000)) bad(`clip "${clip.name}" fps = ${clip.fps}`);
    const n = clip.blendshapes.length / 52;
    intIn(`clip "${clip.name}" frames`, n, 1, LIMITS.maxClipFrames);
    checkLen(`clip "${clip.name}" poses`, clip.poses, n * 16);
    if (clip.baked) {
      if (nActive < 0) nActive = activeVertices(m).length;
      if (nActive === 0) bad(`clip "${clip.name}" has baked deltas but the avatar has no active vertices`);
      const parts: [string, Float32Array, number][] = clip.baked instanceof Float32Array
        ? [['baked deltas', clip.baked, n * nActive * 4]]
        : [['baked basis mean', clip.baked.mean, nActive * 4], ['baked basis vectors', clip.baked.vectors, clip.baked.size * nActive * 4],
           ['baked basis weights', clip.baked.weights, n * clip.baked.size]];
      if (!(clip.baked instanceof Float32Array)) intIn(`clip "${clip.name}" baked basis size`, clip.baked.size, 1, 1024);
      for (const [what, a, len] of parts) {
        checkLen(`clip "${clip.name}" ${what}`, a, len);
        for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) bad(`clip "${clip.name}" ${what} value ${i} is not finite`);
      }
    }
  }
  if (limits) {
    const biggest = Math.max(m.hashTables.byteLength, nv * 16, 6 * m.gridRes ** 3 * 4);
    if (biggest > limits.maxStorageBufferBindingSize)
      throw new PlayerError('DEVICE_LIMIT', `the avatar needs a ${biggest}-byte storage buffer but this device allows ${limits.maxStorageBufferBindingSize}; use a smaller grid or hash table`);
    if (m.width > limits.maxTextureDimension2D || m.height > limits.maxTextureDimension2D)
      throw new PlayerError('DEVICE_LIMIT', `background plate ${m.width}x${m.height} exceeds the device's ${limits.maxTextureDimension2D} texture limit`);
  }
}

/** The deformed vertex ids: the model's list, or every vertex with |sdf| <= activeBand. */
export function activeVertices(m: ModelData): Uint32Array {
  if (m.active) return m.active;
  const ids: number[] = [];
  for (let v = 0; v < m.sdf.length; v++) if (Math.abs(m.sdf[v]) <= m.activeBand) ids.push(v);
  return Uint32Array.from(ids);
}

/**
 * How far a deformed vertex's SDF can move from its canonical value: the deformation MLP's bound
 * (tanh times sdfDeltaScale, none when frozen) or the largest SDF delta of any baked clip
 * (a basis: |mean| plus each vector times its largest weight), with a margin for float rounding.
 */
export function sdfReach(m: ModelData): number {
  let reach = m.freezeSdfDelta ? 0 : m.sdfDeltaScale;
  for (const clip of m.clips) if (clip.baked) reach = Math.max(reach, bakedSdfReach(clip.baked));
  return reach * (1 + 1e-4) + 1e-6;
}

/** The largest SDF delta (every 4th value) a baked track can give, without the margin. */
export function bakedSdfReach(b: Float32Array | BakedBasis): number {
  let reach = 0;
  if (b instanceof Float32Array) {
    for (let i = 3; i < b.length; i += 4) reach = Math.max(reach, Math.abs(b[i]));
    return reach;
  }
  const n = b.mean.length;
  const wmax = new Float64Array(b.size);
  for (let i = 0; i < b.weights.length; i++) wmax[i % b.size] = Math.max(wmax[i % b.size], Math.abs(b.weights[i]));
  for (let i = 3; i < n; i += 4) {
    let r = Math.abs(b.mean[i]);
    for (let k = 0; k < b.size; k++) r += wmax[k] * Math.abs(b.vectors[k * n + i]);
    reach = Math.max(reach, r);
  }
  return reach;
}

/**
 * Where marching tets can find surface in some frame. A vertex's deformed SDF stays within
 * `reach` of its canonical value (sdfReach) if it is active, and equals it otherwise; a grid cube
 * can hold surface only if one corner can be inside (< 0) and one outside (>= 0). `cubes` lists
 * those cubes in increasing order (marching visits only their tetrahedra; keeping the order keeps
 * triangle ids, and so every image, the same as a pass over the whole grid); `deformed` lists the
 * active vertices that are corners of them, the only ones whose deformation can reach the image.
 */
export function surfaceCandidates(m: ModelData, active: Uint32Array, reach: number): { cubes: Uint32Array; deformed: Uint32Array } {
  const R = m.gridRes;
  const n = R + 1;
  // Per vertex: bit 0 can be inside, bit 1 can be outside, bit 2 active, bit 3 corner of a candidate.
  const flag = new Uint8Array(n * n * n);
  for (let v = 0; v < flag.length; v++) flag[v] = m.sdf[v] < 0 ? 1 : 2;
  for (let i = 0; i < active.length; i++) {
    const v = active[i];
    flag[v] = 4 | (m.sdf[v] - reach < 0 ? 1 : 0) | (m.sdf[v] + reach >= 0 ? 2 : 0);
  }
  const out = new Uint32Array(R * R * R);
  let count = 0;
  const dy = n;
  const dz = n * n;
  const corners = [0, 1, dy, dy + 1, dz, dz + 1, dz + dy, dz + dy + 1];
  for (let k = 0; k < R; k++) {
    for (let j = 0; j < R; j++) {
      let v = n * (j + n * k);
      let c = R * (j + R * k);
      for (let i = 0; i < R; i++, v++, c++) {
        const any = flag[v] | flag[v + 1] | flag[v + dy] | flag[v + dy + 1] | flag[v + dz] | flag[v + dz + 1] | flag[v + dz + dy] | flag[v + dz + dy + 1];
        if ((any & 3) !== 3) continue;
        out[count++] = c;
        for (const o of corners) flag[v + o] |= 8;
      }
    }
  }
  let nd = 0;
  for (let i = 0; i < active.length; i++) if (flag[active[i]] & 8) nd++;
  const deformed = new Uint32Array(nd);
  nd = 0;
  for (let i = 0; i < active.length; i++) if (flag[active[i]] & 8) deformed[nd++] = active[i];
  // No candidate: cube 0 stands in (it has no surface), so the passes keep a non-empty range.
  return { cubes: count ? out.slice(0, count) : new Uint32Array(1), deformed };
}
