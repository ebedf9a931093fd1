// Builds the static gallery into demos/dist with rollup (no dev server): the page, its script
// (the SDK from sdk/dist; MediaPipe and onnxruntime-web split into chunks loaded only by the
// webcam and model buttons), the default avatar and its source video (from the shared folder,
// when there), MediaPipe's wasm + face model for the face tracker, and onnxruntime-web's wasm for
// the ONNX model.
// Needs: npm run build:sdk and build/fixtures/default-avatar.dyntet (npm run build:fixtures).
// Usage: node demos/build.mjs [--out DIR]
import { copyFileSync, cpSync, existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rollup } from 'rollup';
import nodeResolve from '@rollup/plugin-node-resolve';
import terser from '@rollup/plugin-terser';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, '..');

/**
 * onnxruntime-web's wasm backend (SIMD; threads only when cross-origin isolated): given a wasmPaths
 * prefix it imports its loader from there too, not from the bundle.
 */
const ORT_FILES = ['ort-wasm-simd-threaded.wasm', 'ort-wasm-simd-threaded.mjs'];

/**
 * The gallery runs ONNX models on the wasm backend only, so `onnxruntime-web` (whose default
 * bundle also carries the WebGPU/WebNN glue, 414 KB) resolves to its wasm-only build (73 KB).
 */
function ortWasmOnly() {
  return {
    name: 'gallery-ort-wasm-only',
    resolveId(id, importer) {
      return id === 'onnxruntime-web' ? this.resolve('onnxruntime-web/wasm', importer, { skipSelf: true }) : null;
    },
  };
}

/** The META chunk's JSON of a .dyntet (docs/asset-format.md: chunk table at the u64 at 24, 32 bytes an entry). */
function assetMetadata(bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const table = Number(v.getBigUint64(24, true));
  for (let i = 0; i < v.getUint32(16, true); i++) {
    const e = table + i * 32;
    if (bytes.toString('latin1', e, e + 4) !== 'META') continue;
    const at = Number(v.getBigUint64(e + 8, true));
    return JSON.parse(bytes.toString('utf8', at, at + Number(v.getBigUint64(e + 16, true))));
  }
  return {};
}

export async function buildGallery(out = join(here, 'dist')) {
  for (const need of ['sdk/dist/index.js', 'sdk/dist/sources.js', 'sdk/dist/webcam.js', 'build/fixtures/default-avatar.dyntet'])
    if (!existsSync(join(root, need))) throw new Error(`demos/build.mjs: ${need} is missing; run npm run build:sdk and npm run build:fixtures first`);
  rmSync(out, { recursive: true, force: true });
  mkdirSync(join(out, 'avatars'), { recursive: true });
  const bundle = await rollup({ input: join(here, 'src', 'gallery.js'), plugins: [ortWasmOnly(), nodeResolve({ browser: true })], treeshake: { moduleSideEffects: false } });
  await bundle.write({ dir: out, format: 'es', entryFileNames: 'gallery.js', chunkFileNames: 'chunks/[name]-[hash].js', plugins: [terser({ ecma: 2020, module: true })] });
  await bundle.close();
  copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
  copyFileSync(join(here, 'src', 'gallery.css'), join(out, 'gallery.css'));
  // The default is the trained avatar committed in demos/avatars/; the synthetic head rides along
  // for tests and machines where a 512x512 neural texture is too slow (software WebGPU).
  const trained = join(here, 'avatars', 'may_5s.dyntet');
  copyFileSync(existsSync(trained) ? trained : join(root, 'build/fixtures/default-avatar.dyntet'), join(out, 'avatars', 'default.dyntet'));
  copyFileSync(join(root, 'build/fixtures/default-avatar.dyntet'), join(out, 'avatars', 'synthetic.dyntet'));
  cpSync(join(root, 'node_modules/@mediapipe/tasks-vision/wasm'), join(out, 'mediapipe', 'wasm'), { recursive: true });
  mkdirSync(join(out, 'ort'));
  for (const f of ORT_FILES) copyFileSync(join(root, 'node_modules/onnxruntime-web/dist', f), join(out, 'ort', f));
  const shared = process.env.DYNTET_SHARED ?? join(root, '..', 'shared');
  // The default avatar's source video, shown beside it, when the shared folder has it.
  const video = assetMetadata(readFileSync(join(out, 'avatars', 'default.dyntet'))).source?.video;
  if (typeof video === 'string' && video) {
    const name = basename(video);
    const from = join(shared, 'data', 'clips', name);
    if (existsSync(from)) copyFileSync(from, join(out, 'avatars', name));
    else console.warn(`demos/build.mjs: ${from} not found; the avatar page shows no source video`);
  }
  const model = join(shared, 'data', 'models', 'face_landmarker.task');
  if (existsSync(model)) copyFileSync(model, join(out, 'mediapipe', 'face_landmarker.task'));
  else console.warn(`demos/build.mjs: ${model} not found; webcam driving will report that the tracker did not start`);
  return out;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--out');
  const out = await buildGallery(i > 0 ? resolve(process.argv[i + 1]) : undefined);
  console.log(`gallery built in ${out}`);
}
