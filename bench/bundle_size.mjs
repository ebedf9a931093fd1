#!/usr/bin/env node
// Prints the gzipped size of the SDK's parts: the core entry (JS without its inlined WebAssembly),
// the WebAssembly it carries, and each optional entry. Reads the minified build in sdk/dist/min
// (run `npm run build:sdk` first) and the .wasm files under wasm/out.
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const minDir = join(root, 'sdk', 'dist', 'min');
if (!existsSync(join(minDir, 'index.js'))) {
  console.error('bundle_size: sdk/dist/min/index.js not found; run `npm run build:sdk` first');
  process.exit(1);
}

const gz = (buf) => gzipSync(buf, { level: 9 }).length;
// Inlined modules are base64 string literals; measure them apart from the code around them.
const B64 = /["'`]([A-Za-z0-9+/]{2000,}={0,2})["'`]/g;

function list(dir) {
  const out = [];
  for (const name of readdirSync(dir)) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) out.push(...list(p));
    else if (name.endsWith('.js')) out.push(p);
  }
  return out.sort();
}

const rows = [];
for (const file of list(minDir)) {
  const text = readFileSync(file, 'utf8');
  const inlined = [...text.matchAll(B64)].map((m) => m[1]);
  const code = inlined.reduce((t, s) => t.replace(s, ''), text);
  const name = relative(minDir, file).replace(/\.js$/, '');
  const kind = name === 'index' ? 'core JS' : name.startsWith('chunks/') ? 'shared chunk' : 'optional entry';
  rows.push({ part: `${kind}: ${name}`, raw: Buffer.byteLength(code), gzip: gz(Buffer.from(code)) });
  for (const [i, s] of inlined.entries()) {
    const bin = Buffer.from(s, 'base64');
    rows.push({ part: `  WASM inlined in ${name} #${i}`, raw: bin.length, gzip: gz(bin), gzipB64: gz(Buffer.from(s)) });
  }
}
const wasmOut = join(root, 'wasm', 'out');
if (existsSync(wasmOut)) {
  for (const name of readdirSync(wasmOut).filter((n) => n.endsWith('.wasm')).sort()) {
    const bin = readFileSync(join(wasmOut, name));
    rows.push({ part: `WASM file: wasm/out/${name}`, raw: bin.length, gzip: gz(bin) });
  }
}

const kb = (n) => (n / 1024).toFixed(1);
const w = Math.max(...rows.map((r) => r.part.length), 4);
console.log(`${'part'.padEnd(w)}  ${'raw KiB'.padStart(9)}  ${'gzip KiB'.padStart(9)}  ${'gzip as base64 KiB'.padStart(18)}`);
console.log(`${'-'.repeat(w)}  ${'-'.repeat(9)}  ${'-'.repeat(9)}  ${'-'.repeat(18)}`);
for (const r of rows) {
  console.log(`${r.part.padEnd(w)}  ${kb(r.raw).padStart(9)}  ${kb(r.gzip).padStart(9)}  ${(r.gzipB64 ? kb(r.gzipB64) : '').padStart(18)}`);
}
const core = list(minDir).filter((f) => !relative(minDir, f).startsWith('chunks/') ? relative(minDir, f) === 'index.js' : true);
const coreTotal = gz(Buffer.concat(core.map((f) => readFileSync(f))));
console.log(`\ncore total as shipped (index.js + shared chunks, gzip): ${kb(coreTotal)} KiB`);
