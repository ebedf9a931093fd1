/**
 * The GPU side of the player: owns the pipelines, buffers and textures of one avatar on one device.
 * Everything is created in the constructor (and on resize); a frame only writes uniforms and
 * records passes: condition -> deform (MLP, or a baked clip's deltas) -> marching tets (count,
 * prefix sum, emit, indirect args) -> raster G-buffer (in compute) -> texture -> antialiasing (per triangle:
 * adjacency and silhouette mask; per pixel pair: the decision; per pixel: the gather) ->
 * composite. No readback on the frame path, and no buffer or texture is created there.
 */
import mlpWgsl from '../../shaders/mlp.wgsl';
import tetsWgsl from '../../shaders/tets.wgsl';
import conditionWgsl from '../../shaders/condition.wgsl';
import deformWgsl from '../../shaders/deform.wgsl';
import mtCountWgsl from '../../shaders/mt_count.wgsl';
import scanWgsl from '../../shaders/scan.wgsl';
import mtEmitWgsl from '../../shaders/mt_emit.wgsl';
import rasterWgsl from '../../shaders/raster.wgsl';
import textureWgsl from '../../shaders/texture.wgsl';
import antialiasWgsl from '../../shaders/antialias.wgsl';
import type { BakedBasis } from './tracks.js';
import { loopsInstance, type LoopsWasm } from './wasm/loops.js';
import compositeWgsl from '../../shaders/composite.wgsl';
import { activeVertices, bakedSdfReach, hashgridLevels, sdfReach, surfaceCandidates, type MlpConfig, type ModelData } from './model.js';

/** Live GPU objects created by all renderers; a debug aid for leak tests. */
export const gpuObjectCount = { buffers: 0, textures: 0 };

export const STAGES = ['condition', 'deform', 'marching', 'raster', 'texture', 'antialias', 'composite'] as const;
export type Stage = (typeof STAGES)[number];

export interface RendererOptions {
  /** Upper bound of emitted triangles (GPU memory: 96 bytes each, and 16 for antialiasing). */
  maxTriangles?: number;
  /** Record per-stage GPU timestamps when the device has 'timestamp-query'. */
  timings?: boolean;
  /**
   * Keep the deformation MLP's per-vertex part of its first layer (deformed vertices x width x 4
   * bytes of GPU memory) instead of recomputing it every frame; the images are the same. Default
   * true; skipped when the buffer would exceed the device's binding limit.
   */
  deformCache?: boolean;
}

// WebGPU's usage flags by value, so importing the player never touches WebGPU globals (server-side
// rendering, pages without WebGPU that only want the typed NO_WEBGPU error).
const U = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, VERTEX: 32, UNIFORM: 64, STORAGE: 128, INDIRECT: 256, QUERY_RESOLVE: 512 } as const;
const TU = { COPY_SRC: 1, COPY_DST: 2, TEXTURE_BINDING: 4, STORAGE_BINDING: 8, RENDER_ATTACHMENT: 16 } as const;
const MAP_READ = 1;

function dispatch2d(n: number, wg: number): [number, number] {
  const groups = Math.max(1, Math.ceil(n / wg));
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/**
 * An MLP's parameters (model.h layout: per layer W[out][in] row-major, then the biases) in the
 * layout mlp.wgsl reads: per layer, `in` rows of ceil(out / 4) vec4s holding W[4g..4g+3][i] (zero
 * past `out`), then the biases as ceil(out / 4) vec4s.
 */
export function packMlp(params: Float32Array, c: MlpConfig): Float32Array {
  const layers: [number, number][] = [];
  for (let k = 0; k <= c.hiddenLayers; k++) layers.push([k === 0 ? c.in : c.width, k === c.hiddenLayers ? c.out : c.width]);
  const out = new Float32Array(layers.reduce((n, [ni, no]) => n + (ni + 1) * 4 * Math.ceil(no / 4), 0));
  let src = 0;
  let dst = 0;
  for (const [ni, no] of layers) {
    const no4 = 4 * Math.ceil(no / 4);
    for (let o = 0; o < no; o++) {
      for (let i = 0; i < ni; i++) out[dst + i * no4 + o] = params[src + o * ni + i];
      out[dst + ni * no4 + o] = params[src + no * ni + o];
    }
    src += no * (ni + 1);
    dst += (ni + 1) * no4;
  }
  return out;
}

interface Pipelines {
  cond: GPUComputePipeline;
  deform: GPUComputePipeline;
  deformPre: GPUComputePipeline;
  deformRest: GPUComputePipeline;
  count: GPUComputePipeline;
  scan: GPUComputePipeline;
  add: GPUComputePipeline;
  emit: GPUComputePipeline;
  finish: GPUComputePipeline;
  binCount: GPUComputePipeline;
  binScan: GPUComputePipeline;
  binEmit: GPUComputePipeline;
  rasterTile: GPUComputePipeline;
  texture: GPUComputePipeline;
  aaTri: GPUComputePipeline;
  aaPair: GPUComputePipeline;
  aaPixel: GPUComputePipeline;
  composite: Map<GPUTextureFormat, GPURenderPipeline>;
  compositeModule: GPUShaderModule;
}

const pipelineCache = new WeakMap<GPUDevice, Pipelines>();

function pipelines(device: GPUDevice): Pipelines {
  const hit = pipelineCache.get(device);
  if (hit) return hit;
  const mod = (code: string) => device.createShaderModule({ code });
  const compute = (module: GPUShaderModule, entryPoint = 'main') =>
    device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint } });
  const scanModule = mod(scanWgsl);
  const emitModule = mod(tetsWgsl + mtEmitWgsl);
  const rasterModule = mod(rasterWgsl);
  const aaModule = mod(tetsWgsl + antialiasWgsl);
  const deformModule = mod(mlpWgsl + deformWgsl);
  const p: Pipelines = {
    cond: compute(mod(conditionWgsl)),
    deform: compute(deformModule, 'mlp_main'),
    deformPre: compute(deformModule, 'mlp_pre'),
    deformRest: compute(deformModule, 'main'),
    count: compute(mod(tetsWgsl + mtCountWgsl)),
    scan: compute(scanModule, 'scan_block'),
    add: compute(scanModule, 'add_block'),
    emit: compute(emitModule, 'main'),
    finish: compute(emitModule, 'finish'),
    binCount: compute(rasterModule, 'bin_count'),
    binScan: compute(rasterModule, 'bin_scan'),
    binEmit: compute(rasterModule, 'bin_emit'),
    rasterTile: compute(rasterModule, 'tile_main'),
    texture: compute(mod(mlpWgsl + textureWgsl)),
    aaTri: compute(aaModule, 'tri_main'),
    aaPair: compute(aaModule, 'pair_main'),
    aaPixel: compute(aaModule, 'pixel_main'),
    composite: new Map(),
    compositeModule: mod(compositeWgsl),
  };
  pipelineCache.set(device, p);
  return p;
}

export class Renderer {
  readonly device: GPUDevice;
  readonly model: ModelData;
  width = 0;
  height = 0;
  readonly frameCapacity: number;
  private buffers: GPUBuffer[] = [];
  private textures: GPUTexture[] = [];
  private nVert: number;
  private nTet: number;
  private nSlot: number;
  private cubes: GPUBuffer;
  private tetOffsets: GPUBuffer;
  private maxTris: number;
  // Buffers
  private condParams: GPUBuffer;
  private condWeights: GPUBuffer;
  private frames: GPUBuffer;
  private cond: GPUBuffer;
  private deformParams: GPUBuffer;
  private deformWeights: GPUBuffer;
  private deformPre: GPUBuffer;
  private sdf: GPUBuffer;
  private elastic: GPUBuffer;
  private verts: GPUBuffer;
  private active: GPUBuffer;
  private nActive = 0;
  // The active vertices the MLP deforms (corners of cubes that can hold surface: surfaceCandidates).
  private nDeformed = 0;
  private deformed: GPUBuffer;
  // Bound of any vertex's SDF delta that the candidate cubes assume (sdfReach).
  private reach: number;
  private deformInitParams!: GPUBuffer;
  private deformBakedParams!: GPUBuffer;
  private baked: GPUBuffer;
  private bakedTrack: Float32Array | BakedBasis | null = null;
  // A basis-form track lives in an AssemblyScript instance's memory (mean, vectors; copied once per
  // clip): each frame's weights go in, the SIMD kernel expands the frame, it is uploaded from there
  // (10x faster than the TypeScript loop: bench/player_cpu_loops.mjs).
  private bakedLoops: { wasm: LoopsWasm; mean: number; vectors: number; weights: number; frame: number; weightsView: Float32Array } | null = null;
  private gridParams: GPUBuffer;
  private emitParams: GPUBuffer;
  private scanLevels: { n: number; data: GPUBuffer; sums: GPUBuffer; params: GPUBuffer }[] = [];
  private triVerts: GPUBuffer;
  private drawArgs: GPUBuffer;
  private triInfo: GPUBuffer;
  private camera: GPUBuffer;
  private texParams: GPUBuffer;
  private texWeights: GPUBuffer;
  private tables: GPUBuffer;
  private compParams: GPUBuffer;
  private bg: GPUTexture;
  // Size-dependent
  private color!: GPUBuffer;
  private aaColor!: GPUBuffer;
  private aaPairs!: GPUBuffer;
  private canonTex!: GPUTexture;
  private idTex!: GPUTexture;
  private gbufferViews!: [GPUTextureView, GPUTextureView];  // canon, id
  // raster.wgsl: per 16x16 tile, the triangle count (then the write cursor; 0 between frames) and
  // the start of its list; the lists, back to back.
  private tileCount!: GPUBuffer;
  private tileStart!: GPUBuffer;
  private tileTris: GPUBuffer;
  // raster.wgsl, small triangles: per pixel, the inverted depth key and triangle id of their winner.
  private zKey!: GPUBuffer;
  private zId!: GPUBuffer;
  // Pipelines and bind groups
  private pCond: GPUComputePipeline;
  private pDeform: GPUComputePipeline;
  private pDeformRest: GPUComputePipeline;
  private pCount: GPUComputePipeline;
  private pScan: GPUComputePipeline;
  private pAdd: GPUComputePipeline;
  private pEmit: GPUComputePipeline;
  private pFinish: GPUComputePipeline;
  private pBinCount: GPUComputePipeline;
  private pBinScan: GPUComputePipeline;
  private pBinEmit: GPUComputePipeline;
  private pRasterTile: GPUComputePipeline;
  private pTexture: GPUComputePipeline;
  private pAaTri: GPUComputePipeline;
  private pAaPair: GPUComputePipeline;
  private pAaPixel: GPUComputePipeline;
  private pComposite: Map<GPUTextureFormat, GPURenderPipeline>;
  private compositeModule: GPUShaderModule;
  private bgCond!: GPUBindGroup;
  private bgDeform!: GPUBindGroup;
  private bgDeformBaked!: GPUBindGroup;
  private bgCount!: GPUBindGroup;
  private bgScan: GPUBindGroup[] = [];
  private bgAdd: GPUBindGroup[] = [];
  private bgEmit!: GPUBindGroup;
  private bgFinish!: GPUBindGroup;
  private bgBinCount!: GPUBindGroup;
  private bgBinScan!: GPUBindGroup;
  private bgBinEmit!: GPUBindGroup;
  private bgRasterTile!: GPUBindGroup;
  private bgTexture!: GPUBindGroup;
  private bgAaTri!: GPUBindGroup;
  private bgAaPair!: GPUBindGroup;
  private bgAaPixel!: GPUBindGroup;
  private bgComposite = new Map<GPUTextureFormat, GPUBindGroup>();
  // Scratch for uniforms, reused every frame.
  private condU = new Uint32Array(24);
  private camU = new Float32Array(20);
  // Timestamps
  private querySet: GPUQuerySet | null = null;
  private queryResolve: GPUBuffer | null = null;
  private queryRead: GPUBuffer | null = null;
  private disposed = false;
  private readTex: GPUTexture | null = null;
  private readBuf: GPUBuffer | null = null;

  constructor(device: GPUDevice, model: ModelData, width: number, height: number, opts: RendererOptions = {}) {
    this.device = device;
    this.model = model;
    device.pushErrorScope('validation');
    device.pushErrorScope('out-of-memory');
    const m = model;
    const R = m.gridRes;
    this.nVert = (R + 1) ** 3;
    this.nTet = 6 * R ** 3;
    const maxBytes = device.limits.maxStorageBufferBindingSize;
    // Only the cubes where surface can appear in some frame are marched (6 tetrahedron slots per
    // cube, each giving at most 2 triangles), and only their active corners run the MLP.
    const active = activeVertices(m);
    this.reach = sdfReach(m);
    const { cubes, deformed } = surfaceCandidates(m, active, this.reach);
    this.nSlot = 6 * cubes.length;
    this.nActive = active.length;
    this.nDeformed = deformed.length;
    this.maxTris = Math.min(opts.maxTriangles ?? 2 * this.nSlot, 2 * this.nSlot, Math.floor(maxBytes / 96));
    this.frameCapacity = Math.max(m.condition.window, ...m.clips.map((c) => c.blendshapes.length / 52));

    // Condition
    this.condParams = this.buffer(96, U.UNIFORM | U.COPY_DST);
    this.condWeights = this.data(m.conditionParams, U.STORAGE);
    this.frames = this.buffer(this.frameCapacity * 52 * 4, U.STORAGE | U.COPY_DST);
    this.cond = this.buffer(Math.max(16, m.condition.outDim * 4), U.STORAGE);
    // Deform
    const size = [0, 1, 2].map((a) => m.boxMax[a] - m.boxMin[a]);
    this.deformParams = this.buffer(96, U.UNIFORM | U.COPY_DST);
    const d = m.deformMlp;
    // Layer 0's positional part per deformed vertex (deform.wgsl mlp_pre), vec4s of its outputs.
    const preBytes = this.nDeformed * 16 * (d.hiddenLayers > 0 ? Math.ceil(d.width / 4) : 1);
    const cached = (opts.deformCache ?? true) && this.nDeformed > 0 && preBytes <= maxBytes;
    this.deformPre = this.buffer(cached ? preBytes : 16, U.STORAGE);
    {
      const ab = new ArrayBuffer(96);
      const f = new Float32Array(ab);
      const u = new Uint32Array(ab);
      f.set([...m.boxMin, 0, ...size, 0], 0);
      u.set([R, this.nVert, m.deformFreq, m.condition.outDim, d.in, d.width, d.hiddenLayers, d.hiddenAct], 8);
      u[16] = this.nDeformed;  // the MLP's list
      f[17] = m.sdfDeltaScale;
      u[18] = m.freezeSdfDelta ? 1 : 0;
      u[19] = 0;  // mode: MLP
      u[20] = cached ? 1 : 0;
      device.queue.writeBuffer(this.deformParams, 0, ab);
      u[16] = this.nActive;    // baked deltas come per active vertex
      u[19] = 1;  // rest state of every vertex
      this.deformInitParams = this.data(u, U.UNIFORM);
      u[19] = 2;  // baked deltas
      this.deformBakedParams = this.data(u, U.UNIFORM);
    }
    // One frame of baked deltas (active x 4 floats), rewritten per frame of a baked clip.
    this.baked = this.buffer(this.nActive * 16, U.STORAGE | U.COPY_DST);
    this.active = this.data(active.length ? active : new Uint32Array(4), U.STORAGE);
    this.deformed = this.data(deformed.length ? deformed : new Uint32Array(4), U.STORAGE);
    this.deformWeights = this.data(packMlp(m.deformParams, m.deformMlp), U.STORAGE);
    this.sdf = this.data(m.sdf, U.STORAGE);
    this.elastic = this.data(m.elasticScale, U.STORAGE);
    this.verts = this.buffer(this.nVert * 16, U.STORAGE);
    // Marching tets
    this.cubes = this.data(cubes, U.STORAGE);
    this.tetOffsets = this.buffer(this.nTet * 4, U.STORAGE);
    this.gridParams = this.data(new Uint32Array([R, this.nTet, this.maxTris, this.nSlot]), U.UNIFORM);
    this.emitParams = this.data(new Float32Array([...m.boxMin, 0, ...size, 0]), U.UNIFORM);
    let n = this.nSlot;
    let data = this.buffer(n * 4, U.STORAGE);
    for (;;) {
      const blocks = Math.ceil(n / 256);
      const sums = this.buffer(Math.max(4, blocks * 4), U.STORAGE);
      const params = this.data(new Uint32Array([n, 0, 0, 0]), U.UNIFORM);
      this.scanLevels.push({ n, data, sums, params });
      if (blocks === 1) break;
      n = blocks;
      data = sums;
    }
    this.triVerts = this.buffer(this.maxTris * 3 * 32, U.STORAGE);
    // The rasteriser's tile lists: room for every triangle in 8 tiles (16x16-pixel tiles; at
    // avatar sizes a triangle touches 1-4).
    this.tileTris = this.buffer(this.maxTris * 8 * 4, U.STORAGE);
    // drawIndirect args, then the antialiasing pass's dispatchIndirect args (mt_emit.wgsl finish).
    this.drawArgs = this.buffer(32, U.STORAGE | U.INDIRECT | U.COPY_SRC);
    // Antialiasing, per triangle: the triangles across its 3 edges and its silhouette mask.
    this.triInfo = this.buffer(this.maxTris * 16, U.STORAGE);
    // Raster
    this.camera = this.buffer(80, U.UNIFORM | U.COPY_DST);
    // Texture
    this.texParams = this.buffer(464, U.UNIFORM | U.COPY_DST);
    this.texWeights = this.data(packMlp(m.textureParams, m.textureMlp), U.STORAGE);
    this.tables = this.data(m.hashTables, U.STORAGE);
    this.compParams = this.buffer(16, U.UNIFORM | U.COPY_DST);
    this.bg = this.texture([m.width, m.height], 'rgba8unorm', TU.TEXTURE_BINDING | TU.COPY_DST);
    const plate = m.background ?? new Uint8Array(m.width * m.height * 4);
    device.queue.writeTexture({ texture: this.bg }, plate, { bytesPerRow: m.width * 4 }, [m.width, m.height]);

    // Pipelines are compiled once per device and shared by every renderer on it.
    const pl = pipelines(device);
    this.pCond = pl.cond;
    this.pDeform = pl.deform;
    const pDeformPre = pl.deformPre;
    this.pDeformRest = pl.deformRest;
    this.pCount = pl.count;
    this.pScan = pl.scan;
    this.pAdd = pl.add;
    this.pEmit = pl.emit;
    this.pFinish = pl.finish;
    this.pBinCount = pl.binCount;
    this.pBinScan = pl.binScan;
    this.pBinEmit = pl.binEmit;
    this.pRasterTile = pl.rasterTile;
    this.pTexture = pl.texture;
    this.pAaTri = pl.aaTri;
    this.pAaPair = pl.aaPair;
    this.pAaPixel = pl.aaPixel;
    this.pComposite = pl.composite;
    this.compositeModule = pl.compositeModule;

    this.bgCond = this.bind(this.pCond, [this.condParams, this.condWeights, this.frames, this.cond]);
    // deform.wgsl: mlp_main (MLP) and main (rest state, baked deltas) read different bindings.
    this.bgDeform = this.bindAt(this.pDeform, {
      0: this.deformParams, 1: this.deformWeights, 2: this.sdf, 3: this.elastic, 4: this.cond, 5: this.verts, 6: this.deformed,
      8: this.deformPre,
    });
    const deformRes = (params: GPUBuffer) =>
      this.bindAt(this.pDeformRest, { 0: params, 2: this.sdf, 5: this.verts, 6: this.active, 7: this.baked });
    this.bgDeformBaked = deformRes(this.deformBakedParams);
    {
      // Rest state of every vertex, once: inactive vertices keep it for the avatar's lifetime.
      const init = deformRes(this.deformInitParams);
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(this.pDeformRest);
      pass.setBindGroup(0, init);
      pass.dispatchWorkgroups(...dispatch2d(this.nVert, 64));
      if (cached) {
        pass.setPipeline(pDeformPre);
        pass.setBindGroup(0, this.bindAt(pDeformPre, { 0: this.deformParams, 1: this.deformWeights, 6: this.deformed, 8: this.deformPre }));
        pass.dispatchWorkgroups(...dispatch2d(this.nDeformed, 32));
      }
      pass.end();
      device.queue.submit([enc.finish()]);
    }
    const offsets = this.scanLevels[0].data;
    // mt_count scans within blocks of 256 (level 0's scan_block) and mt_emit adds the block
    // offsets (level 0's add_block): scan.wgsl runs on the levels above.
    this.bgCount = this.bind(this.pCount, [this.gridParams, this.verts, offsets, this.scanLevels[0].sums, this.cubes]);
    for (const lv of this.scanLevels) {
      this.bgScan.push(this.bind(this.pScan, [lv.params, lv.data, lv.sums]));
      this.bgAdd.push(this.bind(this.pAdd, [lv.params, lv.data, lv.sums]));
    }
    const top = this.scanLevels[this.scanLevels.length - 1].sums;
    this.bgEmit = this.bindAt(this.pEmit, {
      0: this.gridParams, 1: this.verts, 2: offsets, 3: this.triVerts, 4: this.emitParams, 7: this.scanLevels[0].sums,
      8: this.tetOffsets, 9: this.cubes,
    });
    this.bgFinish = device.createBindGroup({
      layout: this.pFinish.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.gridParams } },
        { binding: 5, resource: { buffer: this.drawArgs } },
        { binding: 6, resource: { buffer: top } },
      ],
    });
    this.bgAaTri = this.bindAt(this.pAaTri, {
      0: this.gridParams, 1: this.verts, 2: this.tetOffsets, 3: top, 4: this.triVerts, 5: this.camera, 7: this.triInfo, 8: this.compParams,
    });

    if (opts.timings && device.features.has('timestamp-query')) {
      this.querySet = device.createQuerySet({ type: 'timestamp', count: STAGES.length * 2 });
      this.queryResolve = this.buffer(STAGES.length * 16, U.QUERY_RESOLVE | U.COPY_SRC);
      this.queryRead = this.buffer(STAGES.length * 16, U.MAP_READ | U.COPY_DST);
    }
    this.resize(width, height);
    const oom = device.popErrorScope();
    const invalid = device.popErrorScope();
    this.ready = Promise.all([oom, invalid]).then(([a, b]) => {
      const e = a ?? b;
      if (e) throw new Error(`${a ? 'GPU out of memory' : 'GPU validation error'} while building the avatar: ${e.message}`);
    });
  }

  /** Resolves once every GPU object was created; rejects with the device's error otherwise. */
  readonly ready: Promise<void>;

  private buffer(size: number, usage: number): GPUBuffer {
    const b = this.device.createBuffer({ size: Math.max(16, Math.ceil(size / 4) * 4), usage });
    this.buffers.push(b);
    gpuObjectCount.buffers++;
    return b;
  }

  private data(a: Float32Array | Uint32Array, usage: number): GPUBuffer {
    const b = this.buffer(a.byteLength, usage | U.COPY_DST);
    this.device.queue.writeBuffer(b, 0, a.buffer, a.byteOffset, a.byteLength);
    return b;
  }

  private texture(size: [number, number], format: GPUTextureFormat, usage: number): GPUTexture {
    const t = this.device.createTexture({ size, format, usage });
    this.textures.push(t);
    gpuObjectCount.textures++;
    return t;
  }

  private releaseBuffer(b: GPUBuffer): void {
    const i = this.buffers.indexOf(b);
    if (i < 0) return;
    this.buffers.splice(i, 1);
    b.destroy();
    gpuObjectCount.buffers--;
  }

  private releaseTexture(t: GPUTexture): void {
    const i = this.textures.indexOf(t);
    if (i < 0) return;
    this.textures.splice(i, 1);
    t.destroy();
    gpuObjectCount.textures--;
  }

  private bind(p: GPUComputePipeline | GPURenderPipeline, res: (GPUBuffer | GPUTextureView)[]): GPUBindGroup {
    return this.device.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: res.map((r, binding) => ({ binding, resource: 'mapState' in r ? { buffer: r } : r })),
    });
  }

  private bindAt(p: GPUComputePipeline, res: Record<number, GPUBuffer | GPUTextureView>): GPUBindGroup {
    return this.device.createBindGroup({
      layout: p.getBindGroupLayout(0),
      entries: Object.entries(res).map(([b, r]) => ({ binding: Number(b), resource: 'mapState' in r ? { buffer: r } : r })),
    });
  }

  /** Recreates the size-dependent targets (G-buffer, colour). */
  resize(width: number, height: number): void {
    if (width === this.width && height === this.height) return;
    if (this.color) this.releaseBuffer(this.color);
    if (this.aaColor) this.releaseBuffer(this.aaColor);
    if (this.aaPairs) this.releaseBuffer(this.aaPairs);
    if (this.tileCount) this.releaseBuffer(this.tileCount);
    if (this.tileStart) this.releaseBuffer(this.tileStart);
    if (this.zKey) this.releaseBuffer(this.zKey);
    if (this.zId) this.releaseBuffer(this.zId);
    for (const t of [this.canonTex, this.idTex, this.readTex]) if (t) this.releaseTexture(t);
    if (this.readBuf) this.releaseBuffer(this.readBuf);
    this.readTex = null;
    this.readBuf = null;
    this.width = width;
    this.height = height;
    const m = this.model;
    this.color = this.buffer(width * height * 16, U.STORAGE);
    this.aaColor = this.buffer(width * height * 16, U.STORAGE);
    this.aaPairs = this.buffer(width * height * 8, U.STORAGE);
    this.canonTex = this.texture([width, height], 'rgba32float', TU.STORAGE_BINDING | TU.TEXTURE_BINDING);
    this.idTex = this.texture([width, height], 'r32uint', TU.STORAGE_BINDING | TU.TEXTURE_BINDING);
    this.gbufferViews = [this.canonTex.createView(), this.idTex.createView()];
    const tiles = Math.ceil(width / 16) * Math.ceil(height / 16);
    this.tileCount = this.buffer(tiles * 4, U.STORAGE);
    this.tileStart = this.buffer((tiles + 1) * 4, U.STORAGE);
    // Zero (empty) at creation; raster.wgsl tile_main clears them again after every frame.
    this.zKey = this.buffer(width * height * 4, U.STORAGE);
    this.zId = this.buffer(width * height * 4, U.STORAGE);
    const walk = { 0: this.camera, 1: this.compParams, 2: this.triVerts, 3: this.drawArgs, 4: this.tileCount, 9: this.zKey };
    this.bgBinCount = this.bindAt(this.pBinCount, walk);
    this.bgBinScan = this.bindAt(this.pBinScan, { 1: this.compParams, 4: this.tileCount, 5: this.tileStart });
    this.bgBinEmit = this.bindAt(this.pBinEmit, { ...walk, 8: this.tileTris, 10: this.zId });
    this.bgRasterTile = this.bindAt(this.pRasterTile, {
      0: this.camera, 1: this.compParams, 2: this.triVerts, 4: this.tileCount, 5: this.tileStart,
      6: this.gbufferViews[0], 7: this.gbufferViews[1], 8: this.tileTris, 9: this.zKey, 10: this.zId,
    });
    const ab = new ArrayBuffer(464);
    const f = new Float32Array(ab);
    const u = new Uint32Array(ab);
    f.set([...m.boxMin, 0, ...[0, 1, 2].map((a) => m.boxMax[a] - m.boxMin[a]), 0], 0);
    const g = m.textureGrid;
    const t = m.textureMlp;
    u.set([width, height, g.levels, g.features, g.log2Table, m.condition.outDim, t.in, t.width, t.hiddenLayers, t.hiddenAct, t.outAct, 0], 8);
    hashgridLevels(g).forEach((lv, l) => { u[20 + 4 * l] = lv.res; u[21 + 4 * l] = lv.dense; });
    this.device.queue.writeBuffer(this.texParams, 0, ab);
    this.device.queue.writeBuffer(this.compParams, 0, new Uint32Array([width, height, m.width, m.height]));
    this.bgTexture = this.bind(this.pTexture, [this.texParams, this.texWeights, this.tables, this.cond, this.gbufferViews[0], this.gbufferViews[1], this.color]);
    this.bgAaPair = this.bindAt(this.pAaPair, {
      4: this.triVerts, 5: this.camera, 7: this.triInfo, 8: this.compParams, 9: this.gbufferViews[1], 12: this.aaPairs,
    });
    this.bgAaPixel = this.bindAt(this.pAaPixel, { 8: this.compParams, 10: this.color, 11: this.aaColor, 12: this.aaPairs });
    this.bgComposite.clear();
  }

  /** Uploads one frame of blendshapes into ring slot `k % capacity`. */
  writeFrame(k: number, blendshapes: Float32Array): void {
    this.device.queue.writeBuffer(this.frames, (k % this.frameCapacity) * 208, blendshapes.buffer, blendshapes.byteOffset, 208);
  }

  /**
   * Baked deltas of the clip being played (frames x active x 4: dx, dy, dz, dsdf per active vertex),
   * or null to run the deformation MLP. Kept by reference; render() uploads frame t's deltas into a
   * preallocated buffer.
   */
  setBakedTrack(deltas: Float32Array | BakedBasis | null): void {
    if (deltas instanceof Float32Array) {
      if (this.nActive === 0 || deltas.length === 0 || deltas.length % (this.nActive * 4) !== 0)
        throw new Error(`baked deltas have ${deltas.length} values, not a whole number of frames of ${this.nActive} x 4`);
    } else if (deltas) {
      if (this.nActive === 0 || deltas.mean.length !== this.nActive * 4 || deltas.vectors.length !== deltas.size * this.nActive * 4)
        throw new Error(`a baked basis needs a mean and ${deltas.size} vectors of ${this.nActive} x 4 values`);
    }
    // The marched cubes assume every SDF delta within `reach`; the model's own clips went into it.
    if (deltas && deltas !== this.bakedTrack && !this.model.clips.some((c) => c.baked === deltas)) {
      const r = bakedSdfReach(deltas);
      if (!(r <= this.reach))
        throw new Error(`baked SDF deltas reach ${r}, beyond the ${this.reach} this avatar was prepared for: attach them to the model's clip before loading`);
    }
    if (deltas && !(deltas instanceof Float32Array)) {
      if (deltas !== this.bakedTrack) {
        const wasm = this.bakedLoops?.wasm ?? loopsInstance();
        wasm.reset();
        const n = this.nActive * 4;
        const mean = wasm.alloc(n * 4), vectors = wasm.alloc(deltas.vectors.byteLength), weights = wasm.alloc(deltas.size * 4), frame = wasm.alloc(n * 4);
        // Views made after every allocation: the memory does not grow again until the next clip.
        new Float32Array(wasm.memory.buffer, mean, n).set(deltas.mean);
        new Float32Array(wasm.memory.buffer, vectors, deltas.vectors.length).set(deltas.vectors);
        this.bakedLoops = { wasm, mean, vectors, weights, frame, weightsView: new Float32Array(wasm.memory.buffer, weights, deltas.size) };
      }
    }
    this.bakedTrack = deltas;
  }

  /** Uploads a whole baked track (frames x 52) from slot 0. */
  writeTrack(blendshapes: Float32Array): void {
    this.device.queue.writeBuffer(this.frames, 0, blendshapes.buffer, blendshapes.byteOffset, blendshapes.byteLength);
  }

  private compositePipeline(format: GPUTextureFormat): [GPURenderPipeline, GPUBindGroup] {
    let p = this.pComposite.get(format);
    if (!p) {
      p = this.device.createRenderPipeline({
        layout: 'auto',
        vertex: { module: this.compositeModule, entryPoint: 'vs' },
        fragment: { module: this.compositeModule, entryPoint: 'fs', targets: [{ format }] },
        primitive: { topology: 'triangle-list' },
      });
      this.pComposite.set(format, p);
    }
    let b = this.bgComposite.get(format);
    if (!b) {
      b = this.bind(p, [this.compParams, this.aaColor, this.bg.createView()]);
      this.bgComposite.set(format, b);
    }
    return [p, b];
  }

  /**
   * The compute pass for stage i: with timings, a pass per stage (timestamps are written at pass
   * boundaries); without, stages 0-5 share one pass (WebGPU still orders the dispatches and their
   * memory), which saves a pass begin/end and its synchronisation per stage.
   */
  private stagePass(enc: GPUCommandEncoder, pass: GPUComputePassEncoder, i: number): GPUComputePassEncoder {
    if (!this.querySet) return pass;
    pass.end();
    return enc.beginComputePass({ timestampWrites: this.ts(i) });
  }

  private ts(i: number): { querySet: GPUQuerySet; beginningOfPassWriteIndex: number; endOfPassWriteIndex: number } | undefined {
    return this.querySet ? { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } : undefined;
  }

  /**
   * Records and submits one frame. `t`: index of the shown frame in the track, `n`: frames in the
   * track so far; `pose`: 16 floats. Draws into `target` (the canvas's current texture).
   */
  render(target: GPUTexture, t: number, n: number, pose: Float32Array): void {
    if (this.disposed) return;
    const d = this.device;
    const m = this.model;
    const c = m.condition;
    const cu = this.condU;
    cu.fill(0);
    cu.set([c.window, c.conv.length, c.outDim, t, n, this.frameCapacity], 0);
    c.conv.forEach((l, k) => cu.set([l.inCh, l.outCh, l.kernel, l.stride], 8 + 4 * k));
    d.queue.writeBuffer(this.condParams, 0, cu);
    const cam = this.camU;
    cam.set(pose, 0);
    cam[16] = 1 / Math.tan((0.5 * m.fovyDeg * Math.PI) / 180);
    cam[17] = this.width / this.height;
    cam[18] = m.znear;
    cam[19] = m.zfar;
    d.queue.writeBuffer(this.camera, 0, cam);
    const bt = this.bakedTrack;
    if (bt instanceof Float32Array) {
      const stride = this.nActive * 16;
      const f = Math.min(Math.max(t, 0), bt.byteLength / stride - 1);
      d.queue.writeBuffer(this.baked, 0, bt.buffer, bt.byteOffset + f * stride, stride);
    } else if (bt) {
      const f = Math.min(Math.max(t, 0), bt.weights.length / bt.size - 1);
      const L = this.bakedLoops!, n = this.nActive * 4;
      L.weightsView.set(bt.weights.subarray(f * bt.size, (f + 1) * bt.size));
      L.wasm.expandBakedFrame(L.mean, L.vectors, L.weights, bt.size, n, L.frame);
      d.queue.writeBuffer(this.baked, 0, L.wasm.memory.buffer, L.frame, n * 4);
    }

    const enc = d.createCommandEncoder();
    let pass = enc.beginComputePass({ timestampWrites: this.ts(0) });
    pass.setPipeline(this.pCond);
    pass.setBindGroup(0, this.bgCond);
    pass.dispatchWorkgroups(1);
    pass = this.stagePass(enc, pass, 1);
    // The MLP runs 32 vertices per workgroup (mlp.wgsl tiles), baked deltas one per invocation.
    pass.setPipeline(bt ? this.pDeformRest : this.pDeform);
    pass.setBindGroup(0, bt ? this.bgDeformBaked : this.bgDeform);
    const nDeform = bt ? this.nActive : this.nDeformed;
    if (nDeform > 0) pass.dispatchWorkgroups(...dispatch2d(nDeform, bt ? 64 : 32));
    pass = this.stagePass(enc, pass, 2);
    pass.setPipeline(this.pCount);
    pass.setBindGroup(0, this.bgCount);
    pass.dispatchWorkgroups(...dispatch2d(this.nSlot, 256));
    pass.setPipeline(this.pScan);
    this.scanLevels.forEach((lv, i) => {
      if (i === 0) return;  // done by mt_count
      pass.setBindGroup(0, this.bgScan[i]);
      pass.dispatchWorkgroups(...dispatch2d(lv.n, 256));
    });
    pass.setPipeline(this.pAdd);
    for (let i = this.scanLevels.length - 2; i >= 1; i--) {  // level 0: added by mt_emit
      pass.setBindGroup(0, this.bgAdd[i]);
      pass.dispatchWorkgroups(...dispatch2d(this.scanLevels[i].n, 256));
    }
    pass.setPipeline(this.pEmit);
    pass.setBindGroup(0, this.bgEmit);
    pass.dispatchWorkgroups(...dispatch2d(this.nSlot, 256));
    pass.setPipeline(this.pFinish);
    pass.setBindGroup(0, this.bgFinish);
    pass.dispatchWorkgroups(1);
    // Rasterisation in compute (raster.wgsl): over the emitted triangles (the indirect counts of
    // mt_emit's finish), small ones with per-pixel atomics, the others binned into 16x16-pixel
    // tiles, then one workgroup per tile.
    pass = this.stagePass(enc, pass, 3);
    pass.setPipeline(this.pBinCount);
    pass.setBindGroup(0, this.bgBinCount);
    pass.dispatchWorkgroupsIndirect(this.drawArgs, 16);
    pass.setPipeline(this.pBinScan);
    pass.setBindGroup(0, this.bgBinScan);
    pass.dispatchWorkgroups(1);
    pass.setPipeline(this.pBinEmit);
    pass.setBindGroup(0, this.bgBinEmit);
    pass.dispatchWorkgroupsIndirect(this.drawArgs, 16);
    pass.setPipeline(this.pRasterTile);
    pass.setBindGroup(0, this.bgRasterTile);
    pass.dispatchWorkgroups(Math.ceil(this.width / 16), Math.ceil(this.height / 16));
    pass = this.stagePass(enc, pass, 4);
    pass.setPipeline(this.pTexture);
    pass.setBindGroup(0, this.bgTexture);
    pass.dispatchWorkgroups(Math.ceil(this.width / 8), Math.ceil(this.height / 4));  // 8x4-pixel tiles
    pass = this.stagePass(enc, pass, 5);
    pass.setPipeline(this.pAaTri);
    pass.setBindGroup(0, this.bgAaTri);
    pass.dispatchWorkgroupsIndirect(this.drawArgs, 16);
    pass.setPipeline(this.pAaPair);
    pass.setBindGroup(0, this.bgAaPair);
    pass.dispatchWorkgroups(Math.ceil(this.width / 8), Math.ceil(this.height / 8));
    pass.setPipeline(this.pAaPixel);
    pass.setBindGroup(0, this.bgAaPixel);
    pass.dispatchWorkgroups(Math.ceil(this.width / 8), Math.ceil(this.height / 8));
    pass.end();
    const [cp, cb] = this.compositePipeline(target.format);
    const out = enc.beginRenderPass({
      colorAttachments: [{ view: target.createView(), loadOp: 'clear', storeOp: 'store', clearValue: [0, 0, 0, 1] }],
      timestampWrites: this.ts(6),
    });
    out.setPipeline(cp);
    out.setBindGroup(0, cb);
    out.draw(3);
    out.end();
    if (this.querySet && this.queryResolve && this.queryRead && this.queryRead.mapState === 'unmapped') {
      enc.resolveQuerySet(this.querySet, 0, STAGES.length * 2, this.queryResolve, 0);
      enc.copyBufferToBuffer(this.queryResolve, 0, this.queryRead, 0, STAGES.length * 16);
    }
    d.queue.submit([enc.finish()]);
  }

  /**
   * Renders a frame into an offscreen RGBA8 target and reads it back (tests, screenshots; not for
   * the per-frame path). Rows are tightly packed, top row first.
   */
  async readPixels(t: number, n: number, pose: Float32Array): Promise<Uint8Array> {
    const w = this.width;
    const hgt = this.height;
    const row = Math.ceil((w * 4) / 256) * 256;
    if (!this.readTex) this.readTex = this.texture([w, hgt], 'rgba8unorm', TU.RENDER_ATTACHMENT | TU.COPY_SRC);
    if (!this.readBuf) this.readBuf = this.buffer(row * hgt, U.MAP_READ | U.COPY_DST);
    this.render(this.readTex, t, n, pose);
    const enc = this.device.createCommandEncoder();
    enc.copyTextureToBuffer({ texture: this.readTex }, { buffer: this.readBuf, bytesPerRow: row }, [w, hgt]);
    this.device.queue.submit([enc.finish()]);
    await this.readBuf.mapAsync(MAP_READ);
    const src = new Uint8Array(this.readBuf.getMappedRange());
    const out = new Uint8Array(w * hgt * 4);
    for (let y = 0; y < hgt; y++) out.set(src.subarray(y * row, y * row + w * 4), y * w * 4);
    this.readBuf.unmap();
    return out;
  }

  /** GPU milliseconds from the first stage's start to the last stage's end, set by readTimings(). */
  lastGpuSpanMs = NaN;

  /** Per-stage GPU milliseconds of the last submitted frame (timings option), or null. */
  async readTimings(): Promise<Record<Stage, number> | null> {
    if (!this.queryRead || this.queryRead.mapState !== 'unmapped') return null;
    await this.queryRead.mapAsync(MAP_READ);
    const t = new BigInt64Array(this.queryRead.getMappedRange().slice(0));
    this.queryRead.unmap();
    const out = {} as Record<Stage, number>;
    STAGES.forEach((s, i) => { out[s] = Number(t[2 * i + 1] - t[2 * i]) / 1e6; });
    this.lastGpuSpanMs = Number(t[2 * STAGES.length - 1] - t[0]) / 1e6;
    return out;
  }

  /** Number of triangles the last frame drew (debug; reads back). */
  async triangleCount(): Promise<number> {
    const rb = this.device.createBuffer({ size: 16, usage: U.MAP_READ | U.COPY_DST });
    const enc = this.device.createCommandEncoder();
    enc.copyBufferToBuffer(this.drawArgs, 0, rb, 0, 16);
    this.device.queue.submit([enc.finish()]);
    await rb.mapAsync(MAP_READ);
    const n = new Uint32Array(rb.getMappedRange())[0] / 3;
    rb.unmap();
    rb.destroy();
    return n;
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.buffers) b.destroy();
    for (const t of this.textures) t.destroy();
    gpuObjectCount.buffers -= this.buffers.length;
    gpuObjectCount.textures -= this.textures.length;
    this.buffers = [];
    this.textures = [];
    this.querySet?.destroy();
  }
}
