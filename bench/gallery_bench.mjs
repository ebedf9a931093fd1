// Gallery numbers, printed as tables: (1) first-frame time of the avatar page in headless
// Chromium (SwiftShader here; WebGPU hardware elsewhere), (2) bytes a visitor downloads for the
// avatar page: as measured by the browser without webcam/ONNX, and with the webcam and ONNX
// entry points' files added (raw and gzipped).
// Needs: npm run build:sdk, build/fixtures, then: node bench/gallery_bench.mjs [--runs N] [--size PX]
import { createServer } from 'node:http';
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { extname, join, normalize, resolve, dirname } from 'node:path';
import { gzipSync } from 'node:zlib';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { buildGallery } from '../demos/build.mjs';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? Number(process.argv[i + 1]) : d; };
const RUNS = arg('--runs', 3), SIZE = arg('--size', 128);
const dist = await buildGallery();
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm' };
const server = createServer((req, res) => {
  const p = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const f = join(dist, p);
  if (p.includes('..') || !existsSync(f)) return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[extname(f)] ?? 'application/octet-stream' }).end(readFileSync(f));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader'] });
const gz = (b) => gzipSync(b, { level: 9 }).length;
const times = [];
let fetched = new Map();
for (let r = 0; r < RUNS; r++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const got = new Map();
  page.on('response', async (resp) => { try { got.set(new URL(resp.url()).pathname, await resp.body()); } catch {} });
  const t0 = Date.now();
  await page.goto(`${url}index.html?size=${SIZE}#avatar=default`);
  await page.waitForFunction(() => Number(document.getElementById('avatar')?.dataset.frames ?? 0) >= 1, undefined, { timeout: 600_000 });
  times.push(Date.now() - t0);
  fetched = got;
  await ctx.close();
}
await browser.close();
server.close();

const adapter = 'SwiftShader (headless Chromium)';
console.log(`\nGallery first frame, avatar page ${SIZE}x${SIZE}, ${adapter}, ${RUNS} runs`);
console.log('| run | navigation to first rendered frame (ms) |\n|---|---|');
times.forEach((t, i) => console.log(`| ${i + 1} | ${t} |`));
const sorted = [...times].sort((a, b) => a - b);
console.log(`| median | ${sorted[sorted.length >> 1]} |`);

const sum = (bufs) => bufs.reduce((a, b) => [a[0] + b.length, a[1] + gz(b)], [0, 0]);
const page = sum([...fetched.values()]);
const files = (dir) => readdirSync(dir).flatMap((f) => statSync(join(dir, f)).isDirectory() ? files(join(dir, f)) : [join(dir, f)]);
const webcamFiles = [...files(join(dist, 'chunks')).filter((f) => !fetched.has('/chunks/' + f.split('/chunks/')[1])), join(dist, 'mediapipe/wasm/vision_wasm_internal.js'), join(dist, 'mediapipe/wasm/vision_wasm_internal.wasm'), join(dist, 'mediapipe/face_landmarker.task')].filter(existsSync);
const webcam = sum(webcamFiles.map((f) => readFileSync(f)));
const ortDir = join(root, 'node_modules/onnxruntime-web/dist');
const onnxFiles = [join(root, 'sdk/dist/min/onnx.js'), join(ortDir, 'ort.bundle.min.mjs'), join(ortDir, 'ort-wasm-simd-threaded.wasm')].filter(existsSync);
const onnx = sum(onnxFiles.map((f) => readFileSync(f)));
const kb = (n) => (n / 1024).toFixed(1);
console.log('\nBytes a visitor downloads for the avatar page (KiB)');
console.log('| what | raw | gzip |\n|---|---|---|');
console.log(`| avatar page as loaded (html, css, js, default avatar; ${fetched.size} files) | ${kb(page[0])} | ${kb(page[1])} |`);
console.log(`| + webcam entry (webcam chunk, tasks-vision, its wasm, face model) | +${kb(webcam[0])} | +${kb(webcam[1])} |`);
console.log(`| + ONNX entry (onnx.js, onnxruntime-web bundle, SIMD wasm) | +${kb(onnx[0])} | +${kb(onnx[1])} |`);
console.log(`| page with webcam and ONNX | ${kb(page[0] + webcam[0] + onnx[0])} | ${kb(page[1] + webcam[1] + onnx[1])} |`);
