// The gallery as a visitor uses it, in headless Chromium (SwiftShader) at 128x128: the index
// loads with a poster, the avatar plays, a
// corrupt drop shows a readable error and leaves the page working.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from './support/browser.js';
import { startServer, type StaticServer } from './support/server.js';
import { decodePng } from '../trainer/src/image/png.js';
// @ts-expect-error plain ESM build script without types
import { buildGallery } from '../demos/build.mjs';

let server: StaticServer;
let browser: Browser;
let page: Page;

async function canvasPixels(p: Page): Promise<Uint8Array> {
  // The screenshot may come as RGB or RGBA PNG (the canvas is opaque): normalise to RGBA.
  const img = decodePng(await p.locator('#avatar').screenshot({ omitBackground: true }));
  const rgba = new Uint8Array(img.width * img.height * 4);
  for (let i = 0; i < img.width * img.height; i++)
    for (let c = 0; c < 4; c++) rgba[i * 4 + c] = c < img.channels ? img.data[i * img.channels + c] : 255;
  return rgba;
}
async function framesShown(p: Page): Promise<number> {
  return Number(await p.locator('#avatar').getAttribute('data-frames')) || 0;
}
async function waitFrames(p: Page, more: number): Promise<void> {
  const start = await framesShown(p);
  await p.waitForFunction((n) => Number(document.getElementById('avatar')?.dataset.frames ?? 0) >= n, start + more, { timeout: 90_000 });
}

beforeAll(async () => {
  await buildGallery();
  server = await startServer();
  browser = await launchBrowser();
  page = await browser.newPage();
  page.on('pageerror', (e) => console.error('page error:', e.message));
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('gallery', () => {
  it('the index lists the default avatar with a poster frame', async () => {
    await page.goto(`${server.url}/demos/dist/index.html?size=128`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    await page.waitForSelector('.card[data-id="default"][data-ready="1"]', { timeout: 90_000 });
    expect(await page.locator('.card').count()).toBe(1);
    expect(await page.locator('#error').isHidden()).toBe(true);
  });

  it('the avatar page plays: consecutive frames differ', async () => {
    await page.click('.card[data-id="default"]');
    await page.waitForSelector('#avatar');
    await waitFrames(page, 2);
    const a = await canvasPixels(page);
    await waitFrames(page, 2);
    const b = await canvasPixels(page);
    expect(Buffer.compare(Buffer.from(a), Buffer.from(b))).not.toBe(0);
    expect(await page.locator('#sizes').textContent()).toMatch(/hash-grid tables/);
    expect(await page.locator('#overlay').textContent()).toMatch(/fps/);
  });

  it('dropping a corrupt file shows a readable error and the page keeps working', async () => {
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array([68, 89, 78, 84, 1, 2, 3, 4, 5, 6, 7, 8])], 'broken.dyntet'));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    expect(await page.locator('#error').textContent()).toMatch(/broken\.dyntet is not a usable \.dyntet avatar: .+/);
    const before = await framesShown(page);
    await page.locator('input[data-name="jawOpen"]').fill('0.5');
    await page.waitForFunction((n) => Number(document.getElementById('avatar')?.dataset.frames ?? 0) > n, before, { timeout: 90_000 });
  });
});
