// The gallery as a visitor uses it, in headless Chromium (SwiftShader) at 128x128: the index loads
// with a poster, the avatar plays, the jawOpen slider moves the mouth and nothing far from it, a
// corrupt drop shows a readable error and leaves the page working, a real video clip drives the
// avatar through the face tracker and an ONNX model the test writes; models the test writes that
// do not load, do not fit the contract, fail while running or give NaN/Infinity each give their
// own typed message; the webcam button says when there is no camera or permission is refused.
// Page screenshots are compared with goldens per renderer in e2e/goldens/gallery/
// (refresh: DYNTET_UPDATE_GOLDENS=1 npx vitest run e2e/gallery.test.ts; failures write
// actual/expected/diff PNGs to e2e/out/).
import { statSync } from 'node:fs';
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
  const img = pngToRgba(await p.screenshot({ clip: box, timeout: 120_000 }));
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

// Models of a few nodes, written here (protobuf by hand; e2e/support/onnx_model.ts writes the
// linear ones): input x [N, F], float32 or int64 initializers, declared outputs.
const enc = new TextEncoder();
const varint = (n: number): number[] => (n > 127 ? [(n & 127) | 128, ...varint(Math.floor(n / 128))] : [n]);
const fVarint = (f: number, v: number) => [...varint(f << 3), ...varint(v)];
const fBytes = (f: number, b: ArrayLike<number>) => [...varint((f << 3) | 2), ...varint(b.length), ...Array.from(b)];
const fStr = (f: number, t: string) => fBytes(f, enc.encode(t));
type Init = { name: string; dims: number[]; data: Float32Array | BigInt64Array };
function onnxModel(nodes: { op: string; in: string[]; out: string; axis?: number }[], inits: Init[], outputs: [string, number][]): Uint8Array {
  const tensor = (t: Init) => [...t.dims.flatMap((d) => fVarint(1, d)), ...fVarint(2, t.data instanceof Float32Array ? 1 : 7), ...fStr(8, t.name), ...fBytes(9, new Uint8Array(t.data.buffer.slice(0)))];
  const valueInfo = (name: string, dims: (number | string)[]) => [...fStr(1, name), ...fBytes(2, fBytes(1, [...fVarint(1, 1),
    ...fBytes(2, dims.flatMap((d) => fBytes(1, typeof d === 'number' ? fVarint(1, d) : fStr(2, d))))]))];
  const graph = [
    ...nodes.flatMap((n) => fBytes(1, [...n.in.flatMap((i) => fStr(1, i)), ...fStr(2, n.out), ...fStr(3, n.out), ...fStr(4, n.op),
      ...(n.axis === undefined ? [] : fBytes(5, [...fStr(1, 'axis'), ...fVarint(3, n.axis), ...fVarint(20, 2)]))])),
    ...fStr(2, 'gallery_test'), ...inits.flatMap((t) => fBytes(5, tensor(t))),
    ...fBytes(11, valueInfo('x', ['N', F])), ...outputs.flatMap(([name, width]) => fBytes(12, valueInfo(name, ['N', width]))),
  ];
  return new Uint8Array([...fVarint(1, 8), ...fStr(2, 'dyntet-e2e'), ...fBytes(7, graph), ...fBytes(8, [...fStr(1, ''), ...fVarint(2, 13)])]);
}
/** Chooses `model` (and the may_5s clip), presses start and returns the typed message that follows. */
async function startModel(name: string, model: Uint8Array): Promise<{ code: string | null; text: string | null }> {
  await page.locator('#onnx-model').setInputFiles({ name, mimeType: 'application/octet-stream', buffer: Buffer.from(model) });
  await page.locator('#drive-video').setInputFiles(sharedPath('data', 'clips', 'may_5s.mp4'));
  await page.click('#onnx-start');
  const msg = page.locator('#onnx-message[data-code]');
  await msg.waitFor({ timeout: 90_000 });
  expect(await msg.isVisible()).toBe(true);
  expect(await msg.getAttribute('role')).toBe('alert');
  return { code: await msg.getAttribute('data-code'), text: await msg.textContent() };
}

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
    // The size breakdown: each chunk as stored, adding up to the file the page downloaded.
    expect(await page.locator('#sizes tr[data-chunk="HASH"] td').first().textContent()).toBe('hash-grid tables');
    const file = statSync(join(REPO_ROOT, 'demos', 'dist', 'avatars', 'synthetic.dyntet')).size;
    expect(await page.locator('#sizes tr.total').textContent()).toContain(file.toLocaleString('en'));
    expect(await page.locator('#overlay').textContent()).toMatch(/^\d+ fps, \d+ ms\/frame$/);
  });

  it('the jawOpen slider changes the mouth region and nothing far from it', async () => {
    // The blendshape sliders start at the avatar's rest expression (its clip's median blendshapes;
    // the synthetic head's clip opens and closes the jaw, so jawOpen rests half open).
    const restJaw = await page.evaluate(() => (window as unknown as { galleryPlayer: { restBlendshapes(): Float32Array } }).galleryPlayer.restBlendshapes()[25]);
    expect(restJaw).toBeGreaterThan(0.1);
    expect(Number(await page.locator('input[data-name="jawOpen"]').inputValue())).toBeCloseTo(restJaw, 2);
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

  it('models that do not load, do not fit, fail or give NaN each give their own typed message; the page keeps working', async () => {
    // Not an ONNX file at all.
    let m = await startModel('broken.onnx', new Uint8Array([8, 8, 1, 2, 3, 4]));
    expect(m.code).toBe('MODEL_LOAD_FAILED');
    expect(m.text).toMatch(/^MODEL_LOAD_FAILED: the ONNX model did not load \(.+\)/);
    expect(await page.locator('#drive-video-view').count()).toBe(0);
    // A model that takes 4 features per row, where the gallery gives 55.
    m = await startModel('four.onnx', linearDriverModel({ features: 4, W: new Float32Array(4 * 52), b: new Float32Array(52) }));
    expect(m.code).toBe('MODEL_SHAPE');
    expect(m.text).toMatch(/^MODEL_SHAPE: the ONNX model refused the input: it takes 4 features per row, got 55/);
    // A model that gives 51 scores instead of 52.
    m = await startModel('narrow.onnx', onnxModel([{ op: 'MatMul', in: ['x', 'W'], out: 'blendshapes' }],
      [{ name: 'W', dims: [F, 51], data: new Float32Array(F * 51) }], [['blendshapes', 51]]));
    expect(m.code).toBe('MODEL_SHAPE');
    expect(m.text).toMatch(/^MODEL_SHAPE: the ONNX model's output "blendshapes" has 51 values per row, not 52/);
    // A model that loads and fits but fails while it runs (a Gather past the end of its row).
    m = await startModel('gather.onnx', onnxModel([{ op: 'MatMul', in: ['x', 'W'], out: 'xw' }, { op: 'Gather', in: ['xw', 'idx'], out: 'blendshapes', axis: 1 }],
      [{ name: 'W', dims: [F, 52], data: new Float32Array(F * 52) }, { name: 'idx', dims: [52], data: new BigInt64Array(52).fill(100n) }], [['blendshapes', 52]]));
    expect(m.code).toBe('INFERENCE_FAILED');
    expect(m.text).toMatch(/^INFERENCE_FAILED: the ONNX model failed while running \(.+\)/);
    // A model whose jawOpen score is NaN: refused before it drives anything, not clamped.
    const b = new Float32Array(52);
    b[JAW_OPEN] = NaN;
    const before = await driven(page);
    m = await startModel('nan.onnx', linearDriverModel({ features: F, W: new Float32Array(F * 52), b }));
    expect(m.code).toBe('NON_FINITE_OUTPUT');
    expect(m.text).toMatch(/^NON_FINITE_OUTPUT: output "blendshapes" is NaN at row 0, score 25 \(jawOpen\)/);
    expect(await driven(page)).toBe(before);
    expect(await page.locator('#drive-video-view').count()).toBe(0);
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

  it('a model that gives Infinity once it runs on a face stops the drive with a visible, typed message', async () => {
    // blendshapes = exp(x W), W = 1e4 from every tracker score: a row of zeros (the start-up
    // check) gives exp(0) = 1, a real face overflows to Infinity. onnxSource's onError stops it.
    const W = new Float32Array(F * 52);
    W.fill(1e4, 0, 52 * 52);
    const m = await startModel('overflow.onnx', onnxModel([{ op: 'MatMul', in: ['x', 'W'], out: 'xw' }, { op: 'Exp', in: ['xw'], out: 'blendshapes' }],
      [{ name: 'W', dims: [F, 52], data: W }], [['blendshapes', 52]]));
    expect(m.code).toBe('NON_FINITE_OUTPUT');
    expect(m.text).toMatch(/^NON_FINITE_OUTPUT: output "blendshapes" is Infinity at row 0, score \d+ \(\w+\): the model must give finite values; nothing was driven/);
    expect(Number(await page.locator('#model-drive').getAttribute('data-tracked'))).toBeGreaterThanOrEqual(0); // it did run on the video
    expect(await page.locator('#drive-video-view').count()).toBe(0);
    await setSlider(page, 'jawOpen', 0);
  });

  it('the webcam button says clearly when there is no camera, or when permission is refused', async () => {
    // Headless Chromium here has no camera device.
    await page.click('#webcam');
    const msg = page.locator('#webcam-message[data-code]');
    await msg.waitFor({ timeout: 30_000 });
    expect(await msg.getAttribute('role')).toBe('alert');
    const code = await msg.getAttribute('data-code');
    expect(['NO_CAMERA', 'CAMERA_DENIED']).toContain(code);
    expect(await msg.textContent()).toMatch(code === 'NO_CAMERA' ? /^NO_CAMERA: No camera was found \(\w+\): connect one and try again\./ : /^CAMERA_DENIED: Camera permission was refused/);
    // A visitor who refuses the permission prompt: the browser rejects with NotAllowedError.
    await page.evaluate(() => {
      navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
    });
    await page.click('#webcam');
    await page.waitForFunction(() => document.getElementById('webcam-message')?.dataset.code === 'CAMERA_DENIED', undefined, { timeout: 30_000 });
    expect(await page.locator('#webcam-message').textContent()).toMatch(/^CAMERA_DENIED: Camera permission was refused\. Allow the camera for this page/);
    await setSlider(page, 'jawOpen', 0.25);
  });
});
