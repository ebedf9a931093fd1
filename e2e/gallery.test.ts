// The gallery as a visitor uses it, in headless Chromium (SwiftShader) at 128x128: the index loads
// with a poster, the avatar plays, the jawOpen slider moves the mouth and nothing far from it, a
// corrupt drop shows a readable error and leaves the page working, a real video clip drives the
// avatar through the face tracker and an ONNX model the test writes, a broken model and one that
// fails while running give typed messages. Page screenshots are compared with goldens per renderer in e2e/goldens/gallery/
// (refresh: DYNTET_UPDATE_GOLDENS=1 npx vitest run e2e/gallery.test.ts; failures write
// actual/expected/diff PNGs to e2e/out/).
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from './support/browser.js';
import { expectGolden, pngToRgba, rendererId, type RgbaImage } from './support/goldens.js';
import { linearDriverBlendshapes, linearDriverModel, type LinearDriver } from './support/onnx_model.js';
import { GALLERY_CSP, startServer, type StaticServer } from './support/server.js';
import { REPO_ROOT, sharedPath } from './support/shared.js';
// @ts-expect-error plain ESM build script without types
import { buildGallery } from '../demos/build.mjs';

const SIZE = 128;
let server: StaticServer;
let browser: Browser;
let page: Page;
let goldenDir = '';

/**
 * The avatar canvas as shown on the page, exactly SIZE x SIZE: a page screenshot clipped to it
 * (an element screenshot first waits for two animation frames with the same layout, which a
 * page busy rendering on SwiftShader may not give for a long time).
 */
async function canvasShot(p: Page, selector = '#avatar'): Promise<RgbaImage> {
  await p.evaluate(() => window.scrollTo(0, 0));
  const box = await p.locator(selector).boundingBox();
  if (!box) throw new Error(`${selector} is not on the page`);
  const img = pngToRgba(await p.screenshot({ clip: box }));
  if (img.width !== SIZE || img.height !== SIZE) throw new Error(`${selector} screenshot is ${img.width}x${img.height}, not ${SIZE}x${SIZE}: the canvas is not on whole pixels`);
  return img;
}
async function framesShown(p: Page): Promise<number> {
  return Number(await p.locator('#avatar').getAttribute('data-frames')) || 0;
}
async function waitFrames(p: Page, more: number): Promise<void> {
  const start = await framesShown(p);
  await p.waitForFunction((n) => Number(document.getElementById('avatar')?.dataset.frames ?? 0) >= n, start + more, { timeout: 90_000 });
}
/** Waits until the live frame number `driven` (or a later one) has been rendered. */
async function waitShown(p: Page, driven: number): Promise<void> {
  await p.waitForFunction((n) => Number(document.getElementById('avatar')?.dataset.shown ?? 0) >= n, driven, { timeout: 90_000 });
}
async function driven(p: Page): Promise<number> {
  return Number(await p.locator('#avatar').getAttribute('data-driven')) || 0;
}
/** Moves a slider as a visitor does and waits until the frame it drove is on screen. */
async function setSlider(p: Page, name: string, v: number): Promise<void> {
  const before = await driven(p);
  await p.locator(`input[data-name="${name}"]`).fill(String(v));
  const now = await driven(p);
  expect(now).toBe(before + 1);
  await waitShown(p, now);
}

/** Pixels whose RGB differ, and their bounding box. */
function changes(a: RgbaImage, b: RgbaImage): { count: number; x0: number; y0: number; x1: number; y1: number } {
  const r = { count: 0, x0: Infinity, y0: Infinity, x1: -1, y1: -1 };
  for (let y = 0; y < a.height; y++)
    for (let x = 0; x < a.width; x++) {
      const i = (y * a.width + x) * 4;
      if (a.rgba[i] === b.rgba[i] && a.rgba[i + 1] === b.rgba[i + 1] && a.rgba[i + 2] === b.rgba[i + 2]) continue;
      r.count++;
      r.x0 = Math.min(r.x0, x);
      r.y0 = Math.min(r.y0, y);
      r.x1 = Math.max(r.x1, x);
      r.y1 = Math.max(r.y1, y);
    }
  return r;
}
function changedIn(a: RgbaImage, b: RgbaImage, x0: number, y0: number, x1: number, y1: number): number {
  let n = 0;
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++) {
      const i = (y * a.width + x) * 4;
      if (a.rgba[i] !== b.rgba[i] || a.rgba[i + 1] !== b.rgba[i + 1] || a.rgba[i + 2] !== b.rgba[i + 2]) n++;
    }
  return n;
}

/** The visible page against its golden: top of the page, nothing focused, the timing line masked. */
async function expectPageGolden(p: Page, name: string): Promise<void> {
  await p.evaluate(() => {
    (document.activeElement as HTMLElement | null)?.blur();
    window.scrollTo(0, 0);
    for (const e of document.querySelectorAll('.sliders')) e.scrollTop = 0;
  });
  const png = await p.screenshot({ animations: 'disabled', caret: 'hide', mask: [p.locator('#overlay')], maskColor: '#ff00ff' });
  expectGolden(join(goldenDir, `${name}.png`), pngToRgba(png), `gallery-${name}`);
}

// The model the ONNX test feeds: the tracker's 52 scores (then yaw, pitch, roll, unused) times
// 1.5, no pose output (the head faces the camera, so only the expression can change the frame).
const F = 55;
const RETARGET: LinearDriver = { features: F, W: new Float32Array(F * 52), b: new Float32Array(52) };
for (let k = 0; k < 52; k++) RETARGET.W[k * 52 + k] = 1.5;
const JAW_OPEN = 25; // BLENDSHAPE_NAMES index

beforeAll(async () => {
  await buildGallery();
  server = await startServer(GALLERY_CSP);
  browser = await launchBrowser();
  page = await browser.newPage({ viewport: { width: 1280, height: 720 } });
  page.on('pageerror', (e) => console.error('page error:', e.message));
});
afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('gallery', () => {
  let neutral: RgbaImage;

  it('the index lists the default avatar with a rendered poster frame', async () => {
    // The synthetic head keeps the software-WebGPU tests fast; the trained default is 512x512.
    await page.goto(`${server.url}/demos/dist/index.html?size=${SIZE}&default=avatars/synthetic.dyntet`);
    await page.waitForSelector('body[data-ready="1"]', { timeout: 60_000 });
    await page.waitForSelector('.card[data-id="default"][data-ready="1"]', { timeout: 90_000 });
    expect(await page.locator('.card').count()).toBe(1);
    expect(await page.locator('#error').isHidden()).toBe(true);
    // The poster is drawn: the head in the middle, the plate in the corner, neither black.
    const poster = await canvasShot(page, '.card[data-id="default"] canvas');
    const px = (x: number, y: number) => Array.from(poster.rgba.subarray((y * SIZE + x) * 4, (y * SIZE + x) * 4 + 3));
    expect(px(64, 64)).not.toEqual(px(2, 2));
    expect(px(2, 2)).not.toEqual([0, 0, 0]);
    goldenDir = join(REPO_ROOT, 'e2e', 'goldens', 'gallery', await rendererId(page));
    await expectPageGolden(page, 'index');
  });

  it('the avatar page plays: consecutive frames differ', async () => {
    await page.click('.card[data-id="default"]');
    await page.waitForSelector('#avatar');
    // While a clip plays, the player submits frames faster than SwiftShader finishes them and a
    // screenshot waits for that queue (10-15 s): take them paused, where the queue drains and the
    // player shows the frame of the time it stopped at. force: no waiting for a stable layout.
    const clip = page.locator('#clips button[data-clip]').first();
    await waitFrames(page, 2);
    await page.click('#pause', { force: true });
    const a = await canvasShot(page);
    await clip.click();
    await waitFrames(page, 2);
    await page.click('#pause', { force: true });
    const b = await canvasShot(page);
    expect(changes(a, b).count).toBeGreaterThan(0);
    expect(await page.locator('#sizes').textContent()).toMatch(/hash-grid tables/);
    expect(await page.locator('#overlay').textContent()).toMatch(/^\d+ fps, \d+ ms\/frame$/);
  });

  it('the jawOpen slider changes the mouth region and nothing far from it', async () => {
    await page.click('#pause');
    await setSlider(page, 'jawOpen', 0);
    neutral = await canvasShot(page);
    await setSlider(page, 'jawOpen', 1);
    const open = await canvasShot(page);
    const c = changes(neutral, open);
    // The mouth and jaw of the 128x128 synthetic head lie around (64, 88): the change is there,
    // sizeable, and inside a box around it; the rest of the head and the plate stay bit-identical.
    expect(c.count).toBeGreaterThan(150);
    expect(c.x0).toBeGreaterThanOrEqual(36);
    expect(c.x1).toBeLessThan(92);
    expect(c.y0).toBeGreaterThanOrEqual(64);
    expect(c.y1).toBeLessThan(112);
    expect(changedIn(neutral, open, 44, 76, 84, 100)).toBeGreaterThan(100);
    await expectPageGolden(page, 'avatar-jaw-open');
  });

  it('dropping a corrupt file shows a readable error and the page keeps working', async () => {
    await page.evaluate(() => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array([68, 89, 78, 84, 1, 2, 3, 4, 5, 6, 7, 8])], 'broken.dyntet'));
      document.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    });
    await page.waitForSelector('#error:not([hidden])', { timeout: 30_000 });
    expect(await page.locator('#error').textContent()).toMatch(/broken\.dyntet is not a usable \.dyntet avatar: .+/);
    await setSlider(page, 'jawOpen', 0.5);
  });

  it('a broken ONNX model gives a visible, typed message and the page keeps working', async () => {
    await page.locator('#onnx-model').setInputFiles({ name: 'broken.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from([8, 8, 1, 2, 3, 4]) });
    await page.locator('#drive-video').setInputFiles(sharedPath('data', 'clips', 'may_5s.mp4'));
    await page.click('#onnx-start');
    const msg = page.locator('#onnx-message[data-code]');
    await msg.waitFor({ timeout: 60_000 });
    expect(await msg.isVisible()).toBe(true);
    expect(await msg.getAttribute('data-code')).toBe('BAD_MODEL');
    expect(await msg.getAttribute('role')).toBe('alert');
    expect(await msg.textContent()).toMatch(/^BAD_MODEL: the ONNX model did not load \(.+\)/);
    expect(await page.locator('#drive-video-view').count()).toBe(0);
    // A model with the wrong input size is refused before it drives anything.
    const wrong = linearDriverModel({ features: 4, W: new Float32Array(4 * 52), b: new Float32Array(52) });
    await page.locator('#onnx-model').setInputFiles({ name: 'four.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(wrong) });
    await page.click('#onnx-start');
    await page.waitForFunction(() => document.getElementById('onnx-message')?.dataset.code === 'BAD_INPUT', undefined, { timeout: 60_000 });
    expect(await page.locator('#onnx-message').textContent()).toMatch(/^BAD_INPUT: the ONNX model refused the input/);
    await setSlider(page, 'jawOpen', 0);
  });

  it('a real video clip drives the avatar through the face tracker and an ONNX model', async () => {
    await page.locator('#onnx-model').setInputFiles({ name: 'retarget.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(linearDriverModel(RETARGET)) });
    await page.locator('#drive-video').setInputFiles(sharedPath('data', 'clips', 'may_5s.mp4'));
    await page.click('#onnx-start');
    await page.waitForFunction(() => /^driving from|: /.test(document.getElementById('onnx-message')?.textContent ?? ''), undefined, { timeout: 90_000 });
    expect(await page.locator('#onnx-message').textContent()).toBe('driving from may_5s.mp4 through retarget.onnx');
    expect(await page.locator('#drive-video-view').isVisible()).toBe(true);
    await page.waitForFunction(() => Number(document.getElementById('model-drive')?.dataset.runs ?? 0) >= 1, undefined, { timeout: 60_000 });

    // Stop the video on a frame (as a visitor scrubbing it does), wait until the model's result for
    // that frame is on screen, and check the model's arithmetic on what the tracker read.
    const atFrame = async (frame: number) => {
      const t = await page.evaluate((f) => {
        const v = document.getElementById('drive-video-view') as HTMLVideoElement;
        v.pause();
        v.currentTime = (f + 0.5) / 25;
        return v.currentTime;
      }, frame);
      await page.waitForFunction((time) => (window as any).galleryModelDrive?.videoTime === time, t, { timeout: 60_000 });
      expect(await page.locator('#model-drive').getAttribute('data-face')).toBe('1');
      const d = await page.evaluate(() => {
        const m = (window as any).galleryModelDrive;
        return { input: Array.from(m.input as Float32Array), blendshapes: Array.from(m.output.blendshapes as Float32Array), pose: Array.from(m.output.pose as Float32Array) };
      });
      const want = linearDriverBlendshapes(RETARGET, d.input);
      for (let k = 0; k < 52; k++) expect(d.blendshapes[k]).toBeCloseTo(want[k], 5);
      expect(d.pose.slice(12)).toEqual([0, 0, -40, 1]); // no pose output: facing the camera at 40 cm
      await waitShown(page, await driven(page));
      return { jawOpen: d.blendshapes[JAW_OPEN], image: await canvasShot(page) };
    };
    // may_5s: mouth nearly shut at frame 36, open at frame 48.
    const shut = await atFrame(36);
    const open = await atFrame(48);
    expect(open.jawOpen - shut.jawOpen).toBeGreaterThan(0.2);
    // Both differ from the neutral face only on the head (the plate corners stay), and the
    // mouth region differs between the two.
    for (const f of [shut, open]) {
      const c = changes(neutral, f.image);
      expect(c.count).toBeGreaterThan(100);
      expect(changedIn(neutral, f.image, 0, 0, 24, 24) + changedIn(neutral, f.image, SIZE - 24, 0, SIZE, 24)).toBe(0);
    }
    expect(changedIn(shut.image, open.image, 44, 76, 84, 100)).toBeGreaterThan(50);

    await page.click('#onnx-stop');
    expect(await page.locator('#onnx-message').textContent()).toBe('stopped');
    expect(await page.locator('#drive-video-view').count()).toBe(0);
  });

  it('a model that fails while it runs stops the drive with a visible, typed message', async () => {
    // Passes the start-up check (a row of zeros gives a NaN pose, which nothing drives), then
    // gives a non-finite pose for every real face: the player refuses the frame.
    const P = new Float32Array(F * 3);
    P[52 * 3] = Infinity; // yaw = head yaw x infinity
    const model = linearDriverModel({ features: F, W: new Float32Array(F * 52), b: new Float32Array(52), P });
    await page.locator('#onnx-model').setInputFiles({ name: 'infinite.onnx', mimeType: 'application/octet-stream', buffer: Buffer.from(model) });
    await page.click('#onnx-start');
    const msg = page.locator('#onnx-message[data-code]');
    await msg.waitFor({ timeout: 90_000 });
    expect(await msg.getAttribute('data-code')).toBe('BAD_FRAME');
    expect(await msg.textContent()).toMatch(/^BAD_FRAME: frame\.pose\[\d+\] is (NaN|-?Infinity): every value must be finite/);
    expect(await msg.isVisible()).toBe(true);
    expect(await page.locator('#drive-video-view').count()).toBe(0);
    await setSlider(page, 'jawOpen', 0);
  });
});
