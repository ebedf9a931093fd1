// A real .dyntet asset in a real page: the player fetches build/fixtures/synthetic.dyntet, decodes
// it with the WASM reader and renders it with WebGPU; the same frame from the CPU reference
// renderer (the WASM build of native/core/render_ref) is the ground truth it must match.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { BLENDSHAPE_NAMES } from '../sdk/src/coefficients.js';
import { ReferenceRenderer, type ReferenceWasm } from '../sdk/src/reference.js';
import { launchBrowser } from './support/browser.js';
import { diffImage, encodePng } from './support/png.js';
import { startServer, type StaticServer } from './support/server.js';
import { REPO_ROOT } from './support/shared.js';

const ASSET = join(REPO_ROOT, 'build', 'fixtures', 'synthetic.dyntet');
const MODULE = join(REPO_ROOT, 'wasm', 'out', 'dyntet_reference.mjs');

let server: StaticServer;
let browser: Browser;
let page: Page;
let reference: ReferenceRenderer;

function pose(yawDeg: number): number[] {
  const a = (yawDeg * Math.PI) / 180;
  return [Math.cos(a), 0, -Math.sin(a), 0, 0, 1, 0, 0, Math.sin(a), 0, Math.cos(a), 0, 0, 0, -33, 1];
}

// PSNR in dB over RGB of two RGBA8 images.
function psnr(a: Uint8Array, b: Uint8Array): number {
  let se = 0, n = 0;
  for (let i = 0; i < a.length; i++) {
    if ((i & 3) === 3) continue;
    const d = a[i] - b[i];
    se += d * d;
    n++;
  }
  return se === 0 ? Infinity : 10 * Math.log10((255 * 255 * n) / se);
}

beforeAll(async () => {
  for (const p of [ASSET, MODULE, join(REPO_ROOT, 'sdk', 'dist', 'index.js')])
    if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build first`);
  const factory = (await import(MODULE)).default as (o: object) => Promise<ReferenceWasm>;
  reference = ReferenceRenderer.open(await factory({ wasmBinary: readFileSync(MODULE.replace(/\.mjs$/, '.wasm')) }), new Uint8Array(readFileSync(ASSET)));
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  await page.goto(`${server.url}/e2e/pages/player.html`);
  await page.waitForFunction(() => (window as any).harnessReady === true, undefined, { timeout: 60_000 });
});

afterAll(async () => {
  reference?.dispose();
  await browser?.close();
  await server?.close();
});

describe('player.load(.dyntet) against the CPU reference renderer', () => {
  for (const [name, sets, yaw] of [
    ['neutral', {}, 0],
    ['jaw_open_turned', { jawOpen: 1 }, 20],
  ] as const) {
    it(`renders what the reference renders: ${name}`, async () => {
      const bs = new Array(52).fill(0);
      for (const [k, v] of Object.entries(sets)) bs[BLENDSHAPE_NAMES.indexOf(k as never)] = v;
      const { width, height } = reference;
      const b64 = await page.evaluate(([u, w, h, b, p]) => (window as any).harness.renderAsset(u, w, h, b, p),
        [`${server.url}/build/fixtures/synthetic.dyntet`, width, height, bs, pose(yaw)] as const);
      const gpu = new Uint8Array(Buffer.from(b64, 'base64'));
      const win = new Float32Array(reference.window * 52);
      for (let j = 0; j < reference.window; j++) win.set(bs, j * 52);
      const ref = reference.render({ window: win, pose: Float32Array.from(pose(yaw)) }).data;
      const cpu = new Uint8Array(ref.buffer, ref.byteOffset, ref.byteLength);
      const db = psnr(gpu, cpu);
      console.log(`webgpu vs reference, ${name}: ${db.toFixed(2)} dB over ${width}x${height}`);
      // Guard against a vacuous match: the frame shows a head (many distinct neighbouring pixels).
      let edges = 0;
      for (let i = 4; i < cpu.length; i += 4) if (cpu[i] !== cpu[i - 4]) edges++;
      expect(edges).toBeGreaterThan(1000);
      if (!(db >= 40)) {
        const dir = join(REPO_ROOT, 'e2e', 'out');
        mkdirSync(dir, { recursive: true });
        for (const [k, img] of [['webgpu', gpu], ['reference', cpu], ['diff', diffImage(gpu, cpu)]] as const)
          writeFileSync(join(dir, `asset-${name}.${k}.png`), encodePng(width, height, img));
      }
      expect(db, `PSNR ${db.toFixed(2)} dB (images in e2e/out/asset-${name}.*.png)`).toBeGreaterThanOrEqual(40);
    });
  }

  it('a damaged asset rejects load() with the AssetError and fires error', async () => {
    const bytes = new Uint8Array(readFileSync(ASSET));
    bytes[bytes.length >> 1] ^= 0x10;
    const r = await page.evaluate((b) => (window as any).harness.loadError(b), Buffer.from(bytes).toString('base64'));
    expect(r.rejected).toBe(true);
    expect(r.name).toBe('AssetError');
    expect(r.code).toBe('CHECKSUM_MISMATCH');
    expect(r.event).toBe('CHECKSUM_MISMATCH');
  });
});
