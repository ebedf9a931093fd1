// The player in a real headless Chromium (WebGPU on SwiftShader), loading the built bundle from a
// page served over http://127.0.0.1 under a strict CSP. Build first: npm run build:sdk.
// Goldens: exact bytes per renderer in e2e/goldens/<renderer>/; refresh them only with
// DYNTET_UPDATE_GOLDENS=1 (npm run e2e:update-goldens). Failures write actual/expected/diff PNGs
// to e2e/out/.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser, Page } from 'playwright-core';
import { launchBrowser } from './support/browser.js';
import { decodePng, diffImage, encodePng } from './support/png.js';
import { startServer, type StaticServer } from './support/server.js';
import { REPO_ROOT } from './support/shared.js';

const W = 128;
const H = 128;
const UPDATE = process.env.DYNTET_UPDATE_GOLDENS === '1';

export const SCENES: Record<string, { blendshapes?: Record<string, number>; yawDeg?: number }> = {
  neutral: {},
  jaw_open: { blendshapes: { jawOpen: 1 } },
  blink: { blendshapes: { eyeBlinkLeft: 1, eyeBlinkRight: 1 } },
  turned: { yawDeg: 30 },
};

let server: StaticServer;
let browser: Browser;
let rendererId = '';
const cspViolations: string[] = [];

async function openPage(init?: () => void): Promise<Page> {
  const page = await browser.newPage();
  page.on('console', (m) => { if (m.type() === 'error') console.error('[page]', m.text()); });
  page.on('pageerror', (e) => console.error('[page error]', e.message));
  if (init) await page.addInitScript(init);
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => ((window as any).cspViolations ??= []).push(e.violatedDirective));
  });
  await page.goto(`${server.url}/e2e/pages/player.html`);
  await page.waitForFunction(() => (window as any).harnessReady === true, undefined, { timeout: 60_000 });
  return page;
}

function fromB64(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

function artefacts(name: string, actual: Uint8Array, expected: Uint8Array | null): string {
  const dir = join(REPO_ROOT, 'e2e', 'out');
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, `${name}.actual.png`)];
  writeFileSync(files[0], encodePng(W, H, actual));
  if (expected) {
    files.push(join(dir, `${name}.expected.png`), join(dir, `${name}.diff.png`));
    writeFileSync(files[1], encodePng(W, H, expected));
    writeFileSync(files[2], encodePng(W, H, diffImage(actual, expected)));
  }
  return files.join(', ');
}

beforeAll(async () => {
  if (!existsSync(join(REPO_ROOT, 'sdk', 'dist', 'index.js'))) throw new Error('sdk/dist/index.js is missing: run npm run build:sdk first');
  server = await startServer();
  browser = await launchBrowser();
  const page = await openPage();
  const info = await page.evaluate(() => (window as any).harness.adapterInfo());
  rendererId = [info.vendor, info.architecture].filter(Boolean).join('-').replace(/[^a-z0-9-]+/gi, '_').toLowerCase() || 'unknown';
  await page.close();
});

afterAll(async () => {
  await browser?.close();
  await server?.close();
});

describe('player in headless Chromium', () => {
  let page: Page;
  const images: Record<string, Uint8Array> = {};

  beforeAll(async () => {
    page = await openPage();
  });

  for (const [name, scene] of Object.entries(SCENES)) {
    it(`matches the golden image: ${name}`, async () => {
      const actual = fromB64(await page.evaluate((s) => (window as any).harness.render(s), scene));
      images[name] = actual;
      expect(actual.length).toBe(W * H * 4);
      const golden = join(REPO_ROOT, 'e2e', 'goldens', rendererId, `${name}.png`);
      if (UPDATE) {
        mkdirSync(join(REPO_ROOT, 'e2e', 'goldens', rendererId), { recursive: true });
        writeFileSync(golden, encodePng(W, H, actual));
        return;
      }
      if (!existsSync(golden)) {
        const files = artefacts(`${rendererId}-${name}`, actual, null);
        throw new Error(`no golden for renderer "${rendererId}" at ${golden}: review ${files} and run npm run e2e:update-goldens`);
      }
      const expected = decodePng(readFileSync(golden)).rgba;
      if (Buffer.compare(Buffer.from(actual), Buffer.from(expected)) !== 0) {
        const files = artefacts(`${rendererId}-${name}`, actual, expected);
        throw new Error(`frame "${name}" differs from its golden; see ${files}`);
      }
    });
  }

  it('renders a visible head that moves with the coefficients', () => {
    const differs = (a: Uint8Array, b: Uint8Array) => a.some((v, i) => v !== b[i]);
    expect(differs(images.neutral, images.jaw_open)).toBe(true);
    expect(differs(images.neutral, images.turned)).toBe(true);
    // The centre pixel is on the head, the corner on the plate.
    const bgCorner = images.neutral.subarray(0, 4);
    const centre = images.neutral.subarray((64 * W + 64) * 4, (64 * W + 64) * 4 + 4);
    expect(Array.from(centre)).not.toEqual(Array.from(bgCorner));
  });

  it('is deterministic: the same frame twice gives the same bytes', async () => {
    const again = fromB64(await page.evaluate((s) => (window as any).harness.render(s), SCENES.jaw_open));
    expect(Buffer.compare(Buffer.from(again), Buffer.from(images.jaw_open))).toBe(0);
  });

  it('draws the same bytes without the deformation cache (positional encoding every frame)', async () => {
    const uncached = fromB64(await page.evaluate((s) => (window as any).harness.renderUncached(s), SCENES.jaw_open));
    expect(Buffer.compare(Buffer.from(uncached), Buffer.from(images.jaw_open))).toBe(0);
  });

  it('ran under the CSP without violations (no eval, no inline script)', async () => {
    const v = await page.evaluate(() => (window as any).cspViolations ?? []);
    expect(v).toEqual([]);
  });

  afterAll(async () => page?.close());
});
