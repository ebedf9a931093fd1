// The test page's side: uses the built bundle exactly as a user page would, and exposes small
// async helpers the vitest side calls through page.evaluate. No inline script (the CSP forbids it).
import * as dyntet from '/sdk/dist/index.js';

const { Player, syntheticModel, blendshapeIndex, gpuObjectCount } = dyntet;

function toB64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

function frame(settings) {
  const blendshapes = new Float32Array(52);
  for (const [name, v] of Object.entries(settings.blendshapes ?? {})) blendshapes[blendshapeIndex(name)] = v;
  const a = ((settings.yawDeg ?? 0) * Math.PI) / 180;
  const pose = new Float32Array([Math.cos(a), 0, -Math.sin(a), 0, 0, 1, 0, 0, Math.sin(a), 0, Math.cos(a), 0, 0, 0, -30, 1]);
  return { blendshapes, pose };
}

let player = null;
let clipDevice = null;

window.harness = {
  dyntet,
  async adapterInfo() {
    const adapter = await navigator.gpu.requestAdapter();
    const info = adapter.info ?? {};
    return { vendor: info.vendor ?? '', architecture: info.architecture ?? '', isFallback: !!(info.isFallbackAdapter ?? adapter.isFallbackAdapter) };
  },
  // Renders one driven frame of the synthetic avatar and returns RGBA8 pixels as base64.
  async render(settings, modelOptions) {
    if (!player) {
      player = new Player(document.getElementById('c'));
      await player.loadModel(syntheticModel(modelOptions));
    }
    const f = frame(settings);
    // The condition encoder sees a window of frames: hold the setting for the whole window.
    for (let i = 0; i < 9; i++) player.drive(f);
    player.renderFrame();
    return toB64(await player.readPixels());
  },
  // The same, on a fresh player without the deformation cache (PlayerOptions.deformCache): the
  // per-frame positional encoding path.
  async renderUncached(settings, modelOptions) {
    const shown = document.getElementById('c');
    const canvas = document.createElement('canvas');
    canvas.width = shown.width;
    canvas.height = shown.height;
    document.body.appendChild(canvas);
    const p = new Player(canvas, { deformCache: false });
    try {
      await p.loadModel(syntheticModel(modelOptions));
      const f = frame(settings);
      for (let i = 0; i < 9; i++) p.drive(f);
      p.renderFrame();
      return toB64(await p.readPixels());
    } finally {
      p.dispose();
      canvas.remove();
    }
  },
  // Loads a .dyntet by URL exactly as a page would (fetch + WASM decode), drives a held
  // expression and pose for the whole condition window, and returns the frame as base64 RGBA8.
  async renderAsset(url, width, height, blendshapes, pose) {
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    document.body.appendChild(canvas);
    const p = new Player(canvas);
    try {
      await p.load(url);
      const f = { blendshapes: Float32Array.from(blendshapes), pose: Float32Array.from(pose) };
      for (let i = 0; i < 64; i++) p.drive(f);
      p.renderFrame();
      return toB64(await p.readPixels());
    } finally {
      p.dispose();
      canvas.remove();
    }
  },
  // The page-owned device renderClip's players share, requested once (call it before other tests
  // create and destroy devices: on SwiftShader a requestAdapter() after destroyed devices are
  // garbage-collected can hang).
  async clipDevice() {
    if (!clipDevice) {
      const adapter = await navigator.gpu.requestAdapter();
      clipDevice = await adapter.requestDevice({
        requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
      });
    }
    return true;
  },
  // Loads a .dyntet by URL (fetch, decodeAsset, assetToModel, which must attach each clip's baked
  // deltas from the asset's BAKE chunks), and renders frame `frame` of clip 0
  // on the shared device as RGBA8 base64. opts.baked: play from the baked deltas (else the
  // deformation MLP); opts.zeroBaked: replace the deltas with zeros (shows which deltas are drawn).
  async renderClip(url, width, height, frame, opts = {}) {
    const p2n = (b) => b.deltas.length / b.frames;
    await window.harness.clipDevice();
    const canvas = document.createElement('canvas');
    canvas.width = width;
    canvas.height = height;
    document.body.appendChild(canvas);
    const p = new Player(canvas, { device: clipDevice });
    try {
      const r = await fetch(url);
      const asset = await dyntet.decodeAsset(new Uint8Array(await r.arrayBuffer()));
      const model = await dyntet.assetToModel(asset);
      for (const b of asset.baked) {
        const clip = model.clips.find((c) => c.name === b.clip);
        // Direct deltas arrive as a Float32Array, a stored basis as the basis itself.
        const attached = clip?.baked && (b.basis ? clip.baked === b.basis : clip.baked.length === b.frames * p2n(b));
        if (!attached) throw new Error(`assetToModel did not attach the baked deltas of clip ${b.clip}`);
        if (opts.zeroBaked) clip.baked = new Float32Array(b.deltas.length);
      }
      await p.loadModel(model);
      p.bakedPlayback = !!opts.baked;
      const info = p.clips[0];
      p.play(0);
      p.pause();
      p.seek(frame / info.fps);
      return { info, bakedPlayback: p.bakedPlayback, pixels: toB64(await p.readPixels()) };
    } finally {
      p.dispose();
      canvas.remove();
    }
  },
  // The AssetError of a damaged file, as the caller and the error event see it.
  async loadError(bytesB64) {
    const bytes = Uint8Array.from(atob(bytesB64), (c) => c.charCodeAt(0));
    const p = new Player(document.getElementById('c'));
    let event = null;
    p.addEventListener('error', (e) => { event = e.error ?? e.detail ?? null; });
    try {
      await p.load(bytes);
      return { rejected: false };
    } catch (e) {
      return { rejected: true, name: e.name, code: e.code, message: e.message, event: event ? event.code ?? String(event) : null };
    } finally {
      p.dispose();
    }
  },
  frame,
  syntheticModel,
  Player,
  gpuObjectCount,
  toB64,
};
window.harnessReady = true;
