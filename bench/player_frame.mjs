// Player speed in Node through WebGPU (npm `webgpu`, Dawn): milliseconds per frame and per stage
// (GPU timestamp queries when the adapter has them) for the procedural avatar, rendered offscreen.
// Plain JavaScript so the carried Node of the GPU machine runs it without a compiler.
//   node bench/player_frame.mjs [--size 512] [--grid 64] [--levels 16] [--log2 15] [--width 64] [--frames 50]
//   node bench/player_frame.mjs --asset avatar.dyntet [--frames 50]   (a trained asset, its first clip)
//   --deform-cache 0 runs the deformation MLP without its per-vertex cache (PlayerOptions.deformCache).
// Prints wall time per frame (submit, then wait), back-to-back time per frame (all frames
// submitted, one wait), the GPU span of a frame and each stage's GPU time (timestamp queries).
// DAWN_NODE=path/to/dawn.node loads that binary instead of the npm package's.
// Without a GPU: LD_LIBRARY_PATH=/usr/lib/chromium VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const num = (k, d) => (args[k] !== undefined ? Number(args[k]) : d);
const size = num('size', 512);
const grid = num('grid', 32);
const levels = num('levels', 8);
const log2 = num('log2', 12);
const mlpWidth = num('width', 16);
const frames = num('frames', 5);

const dawn = process.env.DAWN_NODE ? createRequire(import.meta.url)(process.env.DAWN_NODE) : await import('webgpu');
Object.assign(globalThis, dawn.globals);
// Dawn rounds timestamps to 2^16 ns (about 0.066 ms) by default, as browsers do: too coarse for
// stages of a sub-millisecond frame, so the benchmark asks for exact ones.
const gpu = dawn.create(['disable-dawn-features=timestamp_quantization']); // kept referenced for the whole run: Dawn crashes if it is collected
const { Renderer, syntheticModel, STAGES, decodeAsset, assetToModel } = await import(pathToFileURL(join(root, 'sdk', 'dist', 'index.js')).href);

const adapter = await gpu.requestAdapter({ powerPreference: 'high-performance' });
if (!adapter) throw new Error('no WebGPU adapter (without a GPU set LD_LIBRARY_PATH and VK_ICD_FILENAMES to Chromium SwiftShader)');
const hasTs = adapter.features.has('timestamp-query');
const device = await adapter.requestDevice({
  requiredFeatures: hasTs ? ['timestamp-query'] : [],
  requiredLimits: { maxStorageBufferBindingSize: adapter.limits.maxStorageBufferBindingSize, maxBufferSize: adapter.limits.maxBufferSize },
});
device.addEventListener('uncapturederror', (e) => console.error('WebGPU error:', e.error.message));
const info = adapter.info ?? {};

let model;
if (args.asset) {
  const asset = await decodeAsset(new Uint8Array(readFileSync(args.asset)));
  asset.plate = null; // Node has no image decoder for the PNG plate; the plate is one texture read either way
  model = await assetToModel(asset);
} else {
  model = syntheticModel({ gridRes: grid, width: size, height: size, levels, log2Table: log2, mlpWidth, clipFrames: Math.max(frames, 9) });
}
const t0 = performance.now();
const S = args.asset ? model.width : size; // an asset renders at its own frame size
const r = new Renderer(device, model, S, args.asset ? model.height : S, { timings: true, deformCache: num('deform-cache', 1) !== 0 });
const target = device.createTexture({ size: [S, args.asset ? model.height : S], format: 'rgba8unorm', usage: GPUTextureUsage.RENDER_ATTACHMENT });
r.writeTrack(model.clips[0].blendshapes);
const clip = model.clips[0];
const n = clip.blendshapes.length / 52;
r.render(target, 0, n, clip.poses.subarray(0, 16));
await device.queue.onSubmittedWorkDone();
const firstFrame = performance.now() - t0;
const tris = await r.triangleCount();

const wall = [];
const span = [];
const stages = Object.fromEntries(STAGES.map((s) => [s, []]));
for (let f = 0; f < frames; f++) {
  const t = f % n;
  const s = performance.now();
  r.render(target, t, n, clip.poses.subarray(t * 16, t * 16 + 16));
  await device.queue.onSubmittedWorkDone();
  wall.push(performance.now() - s);
  const ts = await r.readTimings();
  if (ts) for (const k of STAGES) stages[k].push(ts[k]);
  if (ts) span.push(r.lastGpuSpanMs);
}
// Throughput: the same frames submitted back to back and waited for once, so the per-frame
// submit-to-done latency of Node's event loop is not counted.
const b0 = performance.now();
for (let f = 0; f < frames; f++) {
  const t = f % n;
  r.render(target, t, n, clip.poses.subarray(t * 16, t * 16 + 16));
}
await device.queue.onSubmittedWorkDone();
const backToBack = (performance.now() - b0) / frames;
const med = (a) => (a.length ? [...a].sort((x, y) => x - y)[a.length >> 1] : NaN);
console.log(`# player frame benchmark, ${new Date().toISOString()}`);
console.log(`adapter: ${info.vendor ?? '?'} ${info.architecture ?? ''} ${info.description ?? ''} (timestamps: ${hasTs})`);
console.log(args.asset
  ? `scene: ${args.asset} (${model.name}), ${model.width}x${model.height}, grid R=${model.gridRes}, ${tris} triangles, hash ${model.textureGrid.levels}x${model.textureGrid.features} 2^${model.textureGrid.log2Table}, MLP width ${model.textureMlp.width}`
  : `scene: ${size}x${size}, grid R=${grid} (${6 * grid ** 3} tets), ${tris} triangles, hash ${levels}x2 2^${log2}, MLP width ${mlpWidth}`);
console.log('');
console.log('| measure | ms (median of ' + frames + ') |');
console.log('| --- | ---: |');
console.log(`| create renderer + first frame | ${firstFrame.toFixed(2)} |`);
console.log(`| frame, wall (submit to done) | ${med(wall).toFixed(3)} |`);
console.log(`| frame, back to back (${frames} submitted, one wait) | ${backToBack.toFixed(3)} |`);
console.log(`| frame, GPU (first stage start to last stage end) | ${span.length ? med(span).toFixed(3) : 'n/a'} |`);
for (const k of STAGES) console.log(`| stage ${k} (GPU) | ${stages[k].length ? med(stages[k]).toFixed(3) : 'n/a'} |`);
// One line for a summary table (bench/run_player_gpu.sh collects the lines starting with ROW).
const sceneName = (args.asset ? `${model.name} (asset, R=${model.gridRes})` : `synthetic ${size}x${size} R=${grid} hash ${levels}x2 2^${log2} MLP ${mlpWidth}`) +
  (num('deform-cache', 1) === 0 ? ', no deform cache' : '');
console.log(['ROW', sceneName, tris, med(wall).toFixed(3), backToBack.toFixed(3), span.length ? med(span).toFixed(3) : 'n/a',
  ...STAGES.map((k) => (stages[k].length ? med(stages[k]).toFixed(3) : 'n/a'))].join(' | ') + ' |');
r.dispose();
device.destroy();
