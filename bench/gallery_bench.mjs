// Gallery numbers, printed as tables: (1) first-frame time of the avatar page in headless
// Chromium (SwiftShader here; WebGPU hardware elsewhere): from navigation until the GPU has
// finished the first frame (the page counts a frame when the GPU is done with it); (2) bytes a
// visitor downloads for the avatar page, as the browser fetched them: the page as loaded, then
// what pressing the webcam button adds (a fake camera stands in for a real one), then what starting
// an ONNX model adds (onnxruntime-web's wasm build and binary; measured with an invalid model,
// which onnxruntime reads only once its runtime is downloaded), raw and gzipped.
// Needs: npm run build:sdk, build/fixtures, then: node bench/gallery_bench.mjs [--runs N] [--size PX]
import { createServer } from 'node:http';
import { existsSync, readFileSync } from 'node:fs';
import { extname, join, normalize } from 'node:path';
import { gzipSync } from 'node:zlib';
import { chromium } from 'playwright-core';
import { buildGallery } from '../demos/build.mjs';

const arg = (k, d) => { const i = process.argv.indexOf(k); return i > 0 ? Number(process.argv[i + 1]) : d; };
const RUNS = arg('--runs', 3), SIZE = arg('--size', 128);
const dist = await buildGallery();
const types = { '.html': 'text/html', '.js': 'text/javascript', '.mjs': 'text/javascript', '.css': 'text/css', '.wasm': 'application/wasm', '.mp4': 'video/mp4' };
const server = createServer((req, res) => {
  const p = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  const f = join(dist, p);
  if (p.includes('..') || !existsSync(f)) return void res.writeHead(404).end();
  res.writeHead(200, { 'content-type': types[extname(f)] ?? 'application/octet-stream' }).end(readFileSync(f));
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const url = `http://127.0.0.1:${server.address().port}/`;
const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--no-first-run', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader',
    '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'] });
const gz = (b) => gzipSync(b, { level: 9 }).length;

/** Records the body of every successful response of `page`; settle() waits for the reads in flight. */
function recorder(page) {
  const got = new Map();
  const pending = [];
  page.on('response', (resp) => {
    if (!resp.ok()) return;
    pending.push(resp.body().then((b) => got.set(new URL(resp.url()).pathname, b), () => {}));
  });
  return { got, settle: async () => { while (pending.length) await pending.shift(); } };
}
const firstFrame = (page) => page.waitForFunction(() => Number(document.getElementById('avatar')?.dataset.frames ?? 0) >= 1, undefined, { timeout: 600_000 });

const times = [];
let page0 = new Map();
for (let r = 0; r < RUNS; r++) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const rec = recorder(page);
  const t0 = Date.now();
  await page.goto(`${url}index.html?size=${SIZE}#avatar=default`);
  await firstFrame(page);
  times.push(Date.now() - t0);
  await rec.settle();
  page0 = rec.got;
  await ctx.close();
}

/** Files the avatar page fetches after `act` that it had not fetched before. */
async function added(act) {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const rec = recorder(page);
  await page.goto(`${url}index.html?size=${SIZE}#avatar=default`);
  await firstFrame(page);
  await rec.settle();
  const before = new Set(rec.got.keys());
  await act(page);
  await rec.settle();
  await ctx.close();
  return new Map([...rec.got].filter(([k]) => !before.has(k)));
}
const webcam = await added(async (page) => {
  await page.click('#webcam');
  await page.waitForFunction(() => document.getElementById('webcam-message')?.textContent !== 'starting the camera...', undefined, { timeout: 300_000 });
  const msg = await page.locator('#webcam-message').textContent();
  if (msg !== 'driving from the webcam') throw new Error(`the webcam did not start: ${msg}`);
});
const onnx = await added(async (page) => {
  await page.locator('#onnx-model').setInputFiles({ name: 'invalid.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from([8, 8, 1, 2, 3]) });
  await page.locator('#drive-video').setInputFiles({ name: 'clip.mp4', mimeType: 'video/mp4', buffer: Buffer.from([0]) });
  await page.click('#onnx-start');
  await page.waitForSelector('#onnx-message[data-code]', { timeout: 300_000 });
  const code = await page.locator('#onnx-message').getAttribute('data-code');
  if (code !== 'MODEL_LOAD_FAILED') throw new Error(`expected the invalid model to be refused after the runtime loaded, got ${await page.locator('#onnx-message').textContent()}`);
});
await browser.close();
server.close();

const adapter = 'SwiftShader (headless Chromium)';
console.log(`\nGallery first frame, avatar page ${SIZE}x${SIZE}, ${adapter}, ${RUNS} runs`);
console.log('| run | navigation to first frame finished by the GPU (ms) |\n|---|---|');
times.forEach((t, i) => console.log(`| ${i + 1} | ${t} |`));
const sorted = [...times].sort((a, b) => a - b);
console.log(`| median | ${sorted[sorted.length >> 1]} |`);

const sum = (m) => [...m.values()].reduce((a, b) => [a[0] + b.length, a[1] + gz(b)], [0, 0]);
const kb = (n) => (n / 1024).toFixed(1);
const names = (m) => [...m.keys()].map((k) => k.replace(/^\//, '').replace(/-[A-Za-z0-9_-]{8}\.js$/, '.js')).join(', ');
// What the ONNX start adds beyond the webcam's files (both import the tracker's JS).
const onnxOnly = new Map([...onnx].filter(([k]) => !webcam.has(k)));
const [p, w, o] = [sum(page0), sum(webcam), sum(onnxOnly)];
console.log('\nBytes a visitor downloads for the avatar page (KiB, as fetched by the browser)');
console.log('| what | raw | gzip |\n|---|---|---|');
console.log(`| avatar page as loaded (${page0.size} files: ${names(page0)}) | ${kb(p[0])} | ${kb(p[1])} |`);
console.log(`| + webcam button (${names(webcam)}) | +${kb(w[0])} | +${kb(w[1])} |`);
console.log(`| + ONNX model start, beyond the webcam's files (${names(onnxOnly)}) | +${kb(o[0])} | +${kb(o[1])} |`);
console.log(`| page with webcam and ONNX | ${kb(p[0] + w[0] + o[0])} | ${kb(p[1] + w[1] + o[1])} |`);
