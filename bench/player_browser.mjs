// Player speed in headless Chromium (WebGPU; SwiftShader on machines without a GPU): ms per frame
// with per-stage GPU timestamps where the browser exposes them, and load()-to-first-frame time.
// Build first (npm run build:sdk).   node bench/player_browser.mjs [--size 512] [--grid 24] [--frames 3]
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const cfg = { size: Number(args.size ?? 512), grid: Number(args.grid ?? 24), frames: Number(args.frames ?? 3), levels: Number(args.levels ?? 8), log2: Number(args.log2 ?? 12), width: Number(args.width ?? 16) };

const types = { '.html': 'text/html', '.js': 'text/javascript' };
const server = createServer(async (req, res) => {
  const p = normalize(decodeURIComponent(new URL(req.url, 'http://x').pathname));
  try {
    if (p.includes('..')) throw new Error('bad path');
    const body = await readFile(join(root, p));
    res.writeHead(200, { 'content-type': types[extname(p)] ?? 'application/octet-stream' }).end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
  headless: true,
  args: ['--no-sandbox', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
    '--disable-quic', '--enable-unsafe-webgpu', '--enable-features=Vulkan', '--use-vulkan=swiftshader', '--use-angle=swiftshader',
    '--enable-dawn-features=allow_unsafe_apis'],
});
try {
  const page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${server.address().port}/e2e/pages/player.html`);
  await page.waitForFunction(() => window.harnessReady === true);
  const r = await page.evaluate(async (cfg) => {
    const { Player, Renderer, syntheticModel, STAGES } = window.harness.dyntet;
    const model = syntheticModel({ gridRes: cfg.grid, width: cfg.size, height: cfg.size, levels: cfg.levels, log2Table: cfg.log2, mlpWidth: cfg.width });
    // load() to first frame through the public API, on a fresh device.
    const canvas = document.getElementById('c');
    canvas.width = canvas.height = cfg.size;
    const t0 = performance.now();
    const player = new Player(canvas);
    await player.loadModel(model);
    player.renderFrame();
    await player.gpuDevice.queue.onSubmittedWorkDone();
    const firstFrame = performance.now() - t0;
    player.dispose();
    // Steady-state frames with timestamps.
    const adapter = await navigator.gpu.requestAdapter();
    const ts = adapter.features.has('timestamp-query');
    const device = await adapter.requestDevice({ requiredFeatures: ts ? ['timestamp-query'] : [] });
    const rr = new Renderer(device, model, cfg.size, cfg.size, { timings: true });
    const target = device.createTexture({ size: [cfg.size, cfg.size], format: 'rgba8unorm', usage: GPUTextureUsage.RENDER_ATTACHMENT });
    const clip = model.clips[0];
    const n = clip.blendshapes.length / 52;
    rr.writeTrack(clip.blendshapes);
    rr.render(target, 0, n, clip.poses.subarray(0, 16));
    await device.queue.onSubmittedWorkDone();
    const wall = [];
    const stages = Object.fromEntries(STAGES.map((s) => [s, []]));
    for (let f = 0; f < cfg.frames; f++) {
      const s = performance.now();
      rr.render(target, f % n, n, clip.poses.subarray((f % n) * 16, (f % n) * 16 + 16));
      await device.queue.onSubmittedWorkDone();
      wall.push(performance.now() - s);
      const t = await rr.readTimings();
      if (t) for (const k of STAGES) stages[k].push(t[k]);
    }
    const tris = await rr.triangleCount();
    rr.dispose();
    device.destroy();
    const info = adapter.info ?? {};
    return { firstFrame, wall, stages, ts, tris, adapter: `${info.vendor} ${info.architecture}` };
  }, cfg);
  const med = (a) => (a.length ? [...a].sort((x, y) => x - y)[a.length >> 1] : NaN);
  console.log(`# player in headless Chromium, ${new Date().toISOString()}`);
  console.log(`adapter: ${r.adapter} (timestamps: ${r.ts}); scene ${cfg.size}x${cfg.size}, grid R=${cfg.grid}, ${r.tris} triangles`);
  console.log('');
  console.log(`| measure | ms (median of ${cfg.frames}) |`);
  console.log('| --- | ---: |');
  console.log(`| loadModel() to first frame | ${r.firstFrame.toFixed(1)} |`);
  console.log(`| frame, wall (submit to done) | ${med(r.wall).toFixed(2)} |`);
  for (const [k, v] of Object.entries(r.stages)) console.log(`| stage ${k} (GPU) | ${v.length ? med(v).toFixed(2) : 'n/a'} |`);
} finally {
  await browser.close();
  server.close();
}
