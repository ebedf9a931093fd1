#!/usr/bin/env node
// The C++ core in WebAssembly: marching-tets triangles per second (vs the native numbers of
// native/build/bench_marching_tets) and .dyntet decode time and memory for an asset of ~5 MB.
//   node bench/core_wasm.mjs [asset.dyntet]     (after npm run build; default: writes a 5.7 MB
//                                                 synthetic asset with dyntet-train synth)
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const load = async (name) => (await import(join(root, 'wasm', 'out', `${name}.mjs`))).default({ wasmBinary: readFileSync(join(root, 'wasm', 'out', `${name}.wasm`)) });
const median = (xs) => xs.sort((a, b) => a - b)[xs.length >> 1];

// Marching tets, the same bumpy sphere as bench/marching_tets.cpp.
const ref = await load('dyntet_reference');
console.log('marching tetrahedra, WASM (SIMD build, Node ' + process.version + '), bumpy sphere in [-1,1]^3, median of 7 runs\n');
console.log('| R | triangles | ms | M triangles/s |\n|---:|---:|---:|---:|');
for (const R of [32, 64, 96, 128]) {
  const n = R + 1, sdf = new Float32Array(n * n * n);
  for (let k = 0; k < n; k++) for (let j = 0; j < n; j++) for (let i = 0; i < n; i++) {
    const x = -1 + (2 * i) / R, y = -1 + (2 * j) / R, z = -1 + (2 * k) / R;
    sdf[i + n * (j + n * k)] = Math.fround(Math.hypot(x, y, z) - 0.7 - 0.05 * Math.sin(9 * x) * Math.sin(7 * y) * Math.sin(8 * z));
  }
  const box = new Float32Array([-1, -1, -1, 1, 1, 1]);
  const p = ref._malloc(box.byteLength + sdf.byteLength);
  ref.HEAPU8.set(new Uint8Array(box.buffer), p);
  ref.HEAPU8.set(new Uint8Array(sdf.buffer), p + 24);
  const ms = [];
  let nt = 0;
  for (let rep = 0; rep < 7; rep++) {
    const t0 = performance.now();
    nt = ref._dt_mt_run(R, p, p + 24, 0);
    ms.push(performance.now() - t0);
  }
  ref._free(p);
  const m = median(ms);
  console.log(`| ${R} | ${nt} | ${m.toFixed(2)} | ${(nt / m / 1e3).toFixed(2)} |`);
}

// Decode of a ~5 MB asset through the player's decoder module.
let asset = process.argv[2];
if (!asset) {
  asset = join(mkdtempSync(join(tmpdir(), 'dyntet-bench-')), 'a.dyntet');
  execFileSync(process.execPath, [join(root, 'trainer', 'bin', 'dyntet-train.mjs'), 'synth', '--out', asset, '--resolution', '64', '--size', '512x512'], { stdio: 'ignore' });
}
const bytes = readFileSync(asset);
const core = await load('dyntet_core');
const ms = [];
for (let rep = 0; rep < 9; rep++) {
  const t0 = performance.now();
  const p = core._malloc(bytes.length);
  core.HEAPU8.set(bytes, p);
  const h = core._dt_asset_open(p, bytes.length);
  core._free(p);
  if (core._dt_asset_status(h) !== 0) throw new Error('decode failed');
  core._dt_asset_close(h);
  ms.push(performance.now() - t0);
}
console.log(`\n.dyntet decode in WASM: ${(bytes.length / 1e6).toFixed(2)} MB asset, median ${median(ms).toFixed(2)} ms of 9, ` +
  `WebAssembly memory after decoding ${(core.HEAPU8.length / 1048576).toFixed(1)} MiB (peak; starts at 16 MiB)`);
