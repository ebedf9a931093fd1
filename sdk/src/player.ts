/**
 * The public player, in the style of a media element: load a source, play clips or drive it live
 * with coefficient frames, listen to events, dispose. One Renderer per loaded avatar.
 */
import { NUM_BLENDSHAPES, POSE_SIZE, restBlendshapes, type CoefficientFrame } from './coefficients.js';
import { validateModel, type ModelData } from './model.js';
import { PlayerError } from './player_error.js';
import { Renderer, type Stage } from './renderer.js';

export type PlayerSource = string | URL | ArrayBuffer | Uint8Array | Blob | Response;

/** Turns asset bytes into a model; the default decoder is set by the asset module. */
export type AssetDecoder = (bytes: Uint8Array) => ModelData | Promise<ModelData>;

export interface PlayerOptions {
  /** Share one device between players; otherwise the player requests its own. */
  device?: GPUDevice;
  /** The WebGPU entry point (default navigator.gpu). */
  gpu?: GPU;
  /** Decoder of .dyntet bytes (default: the built-in one registered by the asset module). */
  decode?: AssetDecoder;
  /** Record per-stage GPU timestamps when available; read them with `timings()`. */
  timings?: boolean;
  /** Upper bound of triangles per frame. */
  maxTriangles?: number;
  /**
   * Keep the per-vertex part of the deformation MLP's first layer on the GPU (deformed vertices x
   * MLP width x 4 bytes: 66 MB for the synthetic R = 128 model)
   * rather than recompute it each frame. Default true; false saves the memory at some deform time
   * (R = 128: 0.14 instead of 0.11 ms on an H100); images are the same.
   */
  deformCache?: boolean;
}

export interface LoadOptions {
  signal?: AbortSignal;
}

export interface ClipInfo {
  name: string;
  fps: number;
  frames: number;
  duration: number;
  /** Whether the clip carries baked per-frame deltas (played without the deformation MLP). */
  baked: boolean;
}

let defaultDecoder: AssetDecoder | null = null;
/** Registers the decoder used when PlayerOptions.decode is absent (called by the asset module). */
export function setDefaultDecoder(d: AssetDecoder): void {
  defaultDecoder = d;
}

const IDENTITY_POSE = new Float32Array([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, -40, 1]);

// Players on each page-owned device. One loss handler per device (not per player), and disposed
// players leave the set, so creating and disposing players on one device retains nothing.
const sharedPlayers = new WeakMap<GPUDevice, Set<Player>>();

function watchSharedDevice(dev: GPUDevice, p: Player): void {
  let set = sharedPlayers.get(dev);
  if (!set) {
    const players = new Set<Player>();
    set = players;
    sharedPlayers.set(dev, players);
    dev.lost.then((info) => {
      for (const q of players) q.sharedDeviceLost(dev, info);
      players.clear();
    });
  }
  set.add(p);
}

type Mode = { kind: 'live' } | { kind: 'clip'; index: number };

async function readSource(source: PlayerSource, signal?: AbortSignal): Promise<Uint8Array> {
  if (source instanceof Uint8Array) return source;
  if (source instanceof ArrayBuffer) return new Uint8Array(source);
  if (typeof Blob !== 'undefined' && source instanceof Blob) return new Uint8Array(await source.arrayBuffer());
  if (typeof Response !== 'undefined' && source instanceof Response) {
    if (!source.ok) throw new PlayerError('BAD_SOURCE', `fetching the avatar failed with HTTP ${source.status}; check the URL`);
    return new Uint8Array(await source.arrayBuffer());
  }
  if (typeof source === 'string' || source instanceof URL) {
    const r = await fetch(source, { signal });
    if (!r.ok) throw new PlayerError('BAD_SOURCE', `fetching ${String(source)} failed with HTTP ${r.status}; check the URL`);
    return new Uint8Array(await r.arrayBuffer());
  }
  throw new PlayerError('BAD_SOURCE', 'load() takes a URL, ArrayBuffer, Uint8Array, Blob or Response');
}

export class Player extends EventTarget {
  readonly canvas: HTMLCanvasElement | OffscreenCanvas;
  private opts: PlayerOptions;
  private device: GPUDevice | null = null;
  private ownDevice = false;
  private context: GPUCanvasContext | null = null;
  private format: GPUTextureFormat = 'rgba8unorm';
  private renderer: Renderer | null = null;
  private model: ModelData | null = null;
  private mode: Mode = { kind: 'live' };
  private liveFrames = 0;
  private pose = new Float32Array(IDENTITY_POSE);
  private raf = 0;
  private lastTick = 0;
  private time = 0;
  private disposed = false;
  private loadToken = 0;
  /** Playback speed factor of clips. */
  playbackRate = 1;
  /** Restart a clip when it ends. */
  loop = false;
  private playing = false;
  private useBaked = true;

  constructor(canvas: HTMLCanvasElement | OffscreenCanvas, options: PlayerOptions = {}) {
    super();
    this.canvas = canvas;
    this.opts = options;
  }

  /** Baked clips of the loaded avatar. */
  get clips(): ClipInfo[] {
    return (this.model?.clips ?? []).map((c) => {
      const frames = c.blendshapes.length / NUM_BLENDSHAPES;
      return { name: c.name, fps: c.fps, frames, duration: frames / c.fps, baked: !!c.baked };
    });
  }

  /**
   * The loaded avatar's rest expression: the median blendshapes of its first clip (zeros when it
   * has none), where sliders and hand-set expressions are best started (restBlendshapes).
   */
  restBlendshapes(): Float32Array {
    const clip = this.model?.clips[0];
    return clip ? restBlendshapes(clip.blendshapes) : new Float32Array(NUM_BLENDSHAPES);
  }

  /**
   * Play clips from their baked deltas when they have them (default true); false runs the
   * deformation MLP for every frame instead (comparisons, debugging).
   */
  get bakedPlayback(): boolean {
    return this.useBaked;
  }

  set bakedPlayback(on: boolean) {
    this.useBaked = !!on;
    // Takes effect from the next rendered frame.
    if (this.renderer && this.model && this.mode.kind === 'clip') this.applyClip(this.renderer, this.mode.index);
  }

  /** Uploads clip `index`'s coefficient track and selects its baked deltas (or the MLP). */
  private applyClip(r: Renderer, index: number): void {
    const clip = this.model!.clips[index];
    r.writeTrack(clip.blendshapes);
    r.setBakedTrack(this.useBaked && clip.baked ? clip.baked : null);
  }

  get paused(): boolean {
    return !this.playing;
  }

  get currentTime(): number {
    return this.time;
  }

  set currentTime(t: number) {
    this.seek(t);
  }

  /** Loads an avatar; on failure the previous avatar stays loaded and an `error` event fires. */
  async load(source: PlayerSource, options: LoadOptions = {}): Promise<void> {
    this.checkAlive();
    const token = ++this.loadToken;
    try {
      const bytes = await readSource(source, options.signal);
      options.signal?.throwIfAborted();
      const decode = this.opts.decode ?? defaultDecoder;
      if (!decode) throw new PlayerError('BAD_SOURCE', 'no asset decoder is registered: import "@dyntet/player" (not a sub-module) or pass options.decode');
      const model = await decode(bytes);
      options.signal?.throwIfAborted();
      await this.install(model, token);
    } catch (e) {
      const aborted = options.signal?.aborted || (e instanceof DOMException && e.name === 'AbortError');
      const err = aborted && !(e instanceof PlayerError) ? new PlayerError('ABORTED', 'load() was aborted', { cause: e }) : e;
      this.dispatchEvent(Object.assign(new Event('error'), { error: err }));
      throw err;
    }
  }

  /** Loads an already decoded model (procedural avatars, tests). Same semantics as load(). */
  async loadModel(model: ModelData): Promise<void> {
    this.checkAlive();
    const token = ++this.loadToken;
    try {
      await this.install(model, token);
    } catch (e) {
      this.dispatchEvent(Object.assign(new Event('error'), { error: e }));
      throw e;
    }
  }

  private async ensureDevice(): Promise<GPUDevice> {
    if (this.device) return this.device;
    if (this.opts.device) {
      const dev = this.opts.device;
      this.device = dev;
      watchSharedDevice(dev, this);
    } else {
      const gpu = this.opts.gpu ?? (typeof navigator !== 'undefined' ? navigator.gpu : undefined);
      if (!gpu) throw new PlayerError('NO_WEBGPU', 'WebGPU is not available in this browser (navigator.gpu is missing): use a browser with WebGPU enabled, served over https or localhost');
      const adapter = await gpu.requestAdapter();
      if (!adapter) throw new PlayerError('NO_WEBGPU', 'no WebGPU adapter is available (requestAdapter returned null): enable hardware acceleration or update the GPU driver');
      const features: GPUFeatureName[] = this.opts.timings && adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
      const dev = await adapter.requestDevice({
        requiredFeatures: features,
        requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
      });
      this.device = dev;
      this.ownDevice = true;
      dev.lost.then((info) => this.onDeviceLost(dev, info));
    }
    if ('getContext' in this.canvas) {
      const ctx = this.canvas.getContext('webgpu') as GPUCanvasContext | null;
      if (!ctx) throw new PlayerError('NO_WEBGPU', 'the canvas has no WebGPU context (it may already use 2d or webgl)');
      this.format = (this.opts.gpu ?? navigator.gpu).getPreferredCanvasFormat();
      ctx.configure({ device: this.device, format: this.format, alphaMode: 'opaque' });
      this.context = ctx;
    }
    return this.device;
  }

  private async install(model: ModelData, token: number): Promise<void> {
    validateModel(model);
    const device = await this.ensureDevice();
    validateModel(model, device.limits);
    if (token !== this.loadToken || this.disposed) return;
    const r = new Renderer(device, model, this.canvas.width, this.canvas.height, {
      timings: this.opts.timings, maxTriangles: this.opts.maxTriangles, deformCache: this.opts.deformCache,
    });
    try {
      await r.ready;
    } catch (e) {
      r.dispose();
      throw new PlayerError('DEVICE_LIMIT', `${(e as Error).message}; try a smaller avatar or maxTriangles`, { cause: e });
    }
    if (token !== this.loadToken || this.disposed) {
      r.dispose();
      return;
    }
    this.renderer?.dispose();
    this.renderer = r;
    this.model = model;
    this.mode = { kind: 'live' };
    this.liveFrames = 0;
    this.time = 0;
    this.pose.set(model.clips[0]?.poses.subarray(0, 16) ?? IDENTITY_POSE);
    // A neutral first frame so the condition window is never empty.
    r.writeFrame(0, new Float32Array(NUM_BLENDSHAPES));
    this.liveFrames = 1;
    this.dispatchEvent(new Event('load'));
  }

  private async onDeviceLost(dev: GPUDevice, info: GPUDeviceLostInfo): Promise<void> {
    if (this.disposed || dev !== this.device || info.reason === 'destroyed' && !this.model) return;
    // Rebuild everything on a fresh device from the decoded model we keep.
    this.renderer = null;
    this.device = null;
    this.context?.unconfigure();
    this.context = null;
    const model = this.model;
    if (!model) return;
    try {
      const wasPlaying = this.playing;
      const mode = this.mode;
      await this.install(model, ++this.loadToken);
      this.mode = mode;
      if (mode.kind === 'clip') this.applyClip(this.renderer!, mode.index);
      this.dispatchEvent(new Event('restored'));
      if (wasPlaying) this.renderFrame();
    } catch (e) {
      this.dispatchEvent(Object.assign(new Event('error'), { error: new PlayerError('DEVICE_LOST', `the GPU device was lost (${info.message}) and could not be recreated`, { cause: e }) }));
    }
  }

  /** @internal Called when the page's shared device is lost: the page decides what to do. */
  sharedDeviceLost(dev: GPUDevice, info: GPUDeviceLostInfo): void {
    if (this.disposed || dev !== this.device) return;
    this.renderer = null;
    this.dispatchEvent(Object.assign(new Event('error'), { error: new PlayerError('DEVICE_LOST', `the shared GPU device was lost (${info.message}): create a new device and a new Player`) }));
  }

  private checkAlive(): void {
    if (this.disposed) throw new PlayerError('DISPOSED', 'this player was disposed; create a new Player');
  }

  private need(): Renderer {
    this.checkAlive();
    if (!this.renderer || !this.model) throw new PlayerError('NO_ASSET', 'no avatar is loaded yet: await player.load(url) first');
    return this.renderer;
  }

  /** Plays a baked clip (by name or index; default the current or first one). */
  play(clip?: string | number): void {
    const r = this.need();
    const clips = this.model!.clips;
    let index = this.mode.kind === 'clip' ? this.mode.index : 0;
    if (clip !== undefined) {
      index = typeof clip === 'number' ? clip : clips.findIndex((c) => c.name === clip);
      if (!clips[index]) throw new PlayerError('UNKNOWN_CLIP', `no clip ${JSON.stringify(clip)}: this avatar has ${clips.map((c) => c.name).join(', ') || 'no clips'}`);
    }
    if (!clips[index]) throw new PlayerError('UNKNOWN_CLIP', 'this avatar has no baked clips; drive it with player.drive(frame)');
    if (this.mode.kind !== 'clip' || this.mode.index !== index) {
      this.mode = { kind: 'clip', index };
      this.applyClip(r, index);
      this.time = 0;
    }
    if (this.playing) return;
    this.playing = true;
    this.lastTick = performance.now();
    this.dispatchEvent(new Event('play'));
    this.schedule();
  }

  pause(): void {
    if (!this.playing) return;
    this.playing = false;
    this.dispatchEvent(new Event('pause'));
  }

  seek(seconds: number): void {
    if (!Number.isFinite(seconds)) throw new PlayerError('BAD_FRAME', `seek(${seconds}): the time must be a finite number of seconds`);
    this.time = Math.max(0, seconds);
    if (this.renderer && !this.playing) this.renderFrame();
  }

  /**
   * Shows one live coefficient frame (switches out of clip playback). Validates before anything
   * is uploaded: 52 finite blendshapes, 16 finite pose values.
   */
  drive(frame: CoefficientFrame): void {
    const r = this.need();
    const bs = frame?.blendshapes;
    const pose = frame?.pose;
    if (!(bs instanceof Float32Array) || bs.length !== NUM_BLENDSHAPES)
      throw new PlayerError('BAD_FRAME', `frame.blendshapes must be a Float32Array of ${NUM_BLENDSHAPES}, got ${bs?.length ?? typeof bs}`);
    if (!(pose instanceof Float32Array) || pose.length !== POSE_SIZE)
      throw new PlayerError('BAD_FRAME', `frame.pose must be a Float32Array of ${POSE_SIZE} (column-major 4x4), got ${pose?.length ?? typeof pose}`);
    for (let i = 0; i < NUM_BLENDSHAPES; i++) if (!Number.isFinite(bs[i])) throw new PlayerError('BAD_FRAME', `frame.blendshapes[${i}] is ${bs[i]}: every value must be finite`);
    for (let i = 0; i < POSE_SIZE; i++) if (!Number.isFinite(pose[i])) throw new PlayerError('BAD_FRAME', `frame.pose[${i}] is ${pose[i]}: every value must be finite`);
    if (this.mode.kind !== 'live') {
      this.pause();
      this.mode = { kind: 'live' };
      this.liveFrames = 0;
      r.setBakedTrack(null);
    }
    r.writeFrame(this.liveFrames, bs);
    this.liveFrames++;
    this.pose.set(pose);
    this.schedule();
  }

  private schedule(): void {
    if (this.raf || typeof requestAnimationFrame === 'undefined') return;
    this.raf = requestAnimationFrame((now) => {
      this.raf = 0;
      if (this.disposed) return;
      if (this.playing) {
        this.time += ((now - this.lastTick) / 1000) * this.playbackRate;
        this.lastTick = now;
      }
      this.renderFrame();
      if (this.playing) this.schedule();
    });
  }

  /** The frame index and track length the condition encoder sees now. */
  private frameState(): { t: number; n: number } {
    if (this.mode.kind === 'live') return { t: this.liveFrames - 1, n: this.liveFrames };
    const clip = this.model!.clips[this.mode.index];
    const n = clip.blendshapes.length / NUM_BLENDSHAPES;
    let t = Math.floor(this.time * clip.fps + 1e-6);
    if (t >= n) {
      if (this.loop) {
        this.time %= n / clip.fps;
        t = Math.floor(this.time * clip.fps + 1e-6) % n;
      } else {
        t = n - 1;
        if (this.playing) {
          // As a media element does at its end: paused becomes true, `pause` fires, then `ended`.
          this.playing = false;
          this.dispatchEvent(new Event('pause'));
          this.dispatchEvent(new Event('ended'));
        }
      }
    }
    this.pose.set(clip.poses.subarray(t * 16, t * 16 + 16));
    return { t, n };
  }

  /** Renders the current state now (manual stepping). */
  renderFrame(): void {
    const r = this.need();
    const { t, n } = this.frameState();
    if (!this.context) throw new PlayerError('NO_WEBGPU', 'this canvas has no WebGPU context');
    r.render(this.context.getCurrentTexture(), t, n, this.pose);
    this.dispatchEvent(Object.assign(new Event('frame'), { frame: t, time: this.time }));
  }

  /** Renders the current state offscreen and returns its RGBA8 pixels (tests, screenshots). */
  async readPixels(): Promise<Uint8Array> {
    const r = this.need();
    const { t, n } = this.frameState();
    return r.readPixels(t, n, this.pose);
  }

  /** Per-stage GPU milliseconds of the last frame, when created with `timings: true`. */
  async timings(): Promise<Record<Stage, number> | null> {
    return this.renderer ? this.renderer.readTimings() : null;
  }

  /** Resizes the drawing buffer (CSS size is the page's business). */
  resize(width: number, height: number): void {
    if (!(Number.isInteger(width) && Number.isInteger(height) && width > 0 && height > 0 && width <= 8192 && height <= 8192))
      throw new PlayerError('BAD_FRAME', `resize(${width}, ${height}): sizes must be integers in [1, 8192]`);
    this.canvas.width = width;
    this.canvas.height = height;
    this.renderer?.resize(width, height);
  }

  /** The GPU device in use (shared or own), once loaded. */
  get gpuDevice(): GPUDevice | null {
    return this.device;
  }

  /** Releases every GPU object; an own device is destroyed too. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.playing = false;
    if (this.raf && typeof cancelAnimationFrame !== 'undefined') cancelAnimationFrame(this.raf);
    this.renderer?.dispose();
    this.renderer = null;
    this.model = null;
    this.context?.unconfigure();
    if (this.device && !this.ownDevice) sharedPlayers.get(this.device)?.delete(this);
    if (this.ownDevice) this.device?.destroy();
    this.device = null;
  }
}
