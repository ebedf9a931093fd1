#!/usr/bin/env node
// Compiles the shared C++ core (native/core) to WebAssembly with emscripten, and the player's
// AssemblyScript loops. Output: wasm/out/ (ignored by git), consumed by the SDK bundle and tests.
//   node wasm/build.mjs            all modules
// Any emcc >= 3.1 on PATH works (Debian's `apt-get install emscripten`, or emsdk's).
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const out = join(root, 'wasm', 'out');
mkdirSync(out, { recursive: true });

// Debian's emcc finds its JavaScript dependencies (acorn) only through NODE_PATH.
// Under `npm run`, PATH starts with node_modules/.bin and npm_* variables are set; Debian's emcc
// then silently skips minifying the JS glue while the .wasm's import names are minified, and the
// two no longer link. Run emcc with the environment a shell would give it.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')));
env.PATH = (env.PATH ?? '').split(':').filter((p) => !p.includes('node_modules')).join(':');
env.NODE_PATH = process.env.NODE_PATH ?? '/usr/share/nodejs';

function fail(msg) {
  console.error(`wasm/build.mjs: ${msg}`);
  process.exit(1);
}

const probe = spawnSync('emcc', ['--version'], { env, encoding: 'utf8' });
if (probe.error || probe.status !== 0)
  fail('emcc (emscripten) not found on PATH: install it (apt-get install emscripten, or emsdk: https://emscripten.org/docs/getting_started/) and retry');
const version = /(\d+)\.(\d+)\.(\d+)/.exec(probe.stdout)?.slice(1).map(Number) ?? [0, 0, 0];
if (version[0] < 3 || (version[0] === 3 && version[1] < 1)) fail(`emcc ${version.join('.')} is too old: 3.1 or newer is needed`);

// The same flags as the native build where results must agree bit for bit (no FMA contraction).
// ENVIRONMENT has no 'node': callers always pass the bytes as wasmBinary, so the glue needs no
// file access, and emcc 3.1's Node branch (__dirname, require) would break in Node's ES modules.
const common = ['-std=c++17', '-msimd128', '-ffp-contract=off', '-fno-exceptions', '-I', join(root, 'native'),
  '-sMODULARIZE=1', '-sEXPORT_ES6=1', '-sENVIRONMENT=web,worker', '-sALLOW_MEMORY_GROWTH=1', '-sFILESYSTEM=0',
  '-sINITIAL_MEMORY=16777216', '-sTOTAL_STACK=1048576', '-sEXPORTED_RUNTIME_METHODS=["HEAPU8","HEAPF32","HEAP32","HEAPU32"]'];

const modules = [
  {
    // The asset decoder of the player's core bundle: reader and validation only, kept small
    // (optimised for size: it ships inlined in the bundle, and decoding is not the slow part).
    name: 'dyntet_core',
    opt: '-Oz',
    sources: ['core/asset.cpp', 'core/json.cpp', 'core/asset_capi.cpp'],
    exports: ['_malloc', '_free', '_dt_asset_open', '_dt_asset_status', '_dt_asset_error_name', '_dt_asset_message',
      '_dt_asset_metadata', '_dt_asset_tensor_count', '_dt_asset_tensor_data', '_dt_asset_tensor_dtype', '_dt_asset_active_count',
      '_dt_asset_active_data', '_dt_asset_clip_count', '_dt_asset_clip_name', '_dt_asset_clip_fps', '_dt_asset_clip_frames',
      '_dt_asset_clip_data', '_dt_asset_baked_count', '_dt_asset_baked_clip', '_dt_asset_baked_frames', '_dt_asset_baked_data',
      '_dt_asset_baked_basis_size', '_dt_asset_baked_mean', '_dt_asset_baked_basis', '_dt_asset_baked_weights',
      '_dt_asset_has_plate', '_dt_asset_plate_encoding', '_dt_asset_plate_width', '_dt_asset_plate_height', '_dt_asset_plate_size',
      '_dt_asset_plate_data', '_dt_asset_close'],
  },
  {
    // The CPU reference renderer (and, through it, the asset reader and marching tets): the ground
    // truth of the WebGPU player's images and the renderer of `dyntet-train demo`.
    name: 'dyntet_reference',
    opt: '-O3',
    sources: ['core/asset.cpp', 'core/json.cpp', 'core/marching_tets.cpp', 'core/render_ref.cpp', 'core/render_ref_capi.cpp', 'core/mt_capi.cpp',
      'core/asset_rewrite_capi.cpp'],
    exports: ['_malloc', '_free', '_dt_rewrite', '_dt_rewrite_data', '_dt_mt_run', '_dt_mt_vertex_count', '_dt_mt_positions', '_dt_mt_canonical', '_dt_mt_triangles', '_dt_ref_open', '_dt_ref_error', '_dt_ref_width', '_dt_ref_height', '_dt_ref_window',
      '_dt_ref_active', '_dt_ref_render', '_dt_ref_close'],
  },
];

for (const m of modules) {
  const args = [m.opt, ...common, ...m.sources.map((s) => join(root, 'native', s)), `-sEXPORTED_FUNCTIONS=${JSON.stringify(m.exports)}`,
    '-sEXPORT_NAME=' + m.name, '-o', join(out, `${m.name}.mjs`)];
  console.log(`wasm: ${m.name} (${m.sources.length} sources)`);
  const r = spawnSync('emcc', args, { env, stdio: 'inherit' });
  if (r.status !== 0) fail(`emcc failed for ${m.name}`);
  // Types for the emitted factory, so TypeScript sources can import it.
  writeFileSync(join(out, `${m.name}.d.mts`),
    'declare const factory: (options?: { wasmBinary?: Uint8Array }) => Promise<any>;\nexport default factory;\n');
}

const as = spawnSync(process.execPath, [join(root, 'wasm', 'as', 'build.mjs')], { stdio: 'inherit' });
if (as.status !== 0) fail('AssemblyScript build failed');
