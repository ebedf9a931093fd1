// Golden screenshots shared by the browser tests: exact bytes per renderer (one folder per WebGPU
// adapter, named as e2e/player.test.ts names them), refreshed only with DYNTET_UPDATE_GOLDENS=1
// (npm run e2e:update-goldens). A mismatch or a missing golden writes actual / expected / diff
// PNGs to e2e/out/ and names them in the error. Images are RGBA8 (support/png.ts writes them).
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { Page } from 'playwright-core';
import { decodePng as decodeAnyPng } from '../../trainer/src/image/png.js';
import { decodePng, diffImage, encodePng } from './png.js';
import { REPO_ROOT } from './shared.js';

export const UPDATE_GOLDENS = process.env.DYNTET_UPDATE_GOLDENS === '1';

export interface RgbaImage {
  width: number;
  height: number;
  /** width * height * 4 bytes, row-major. */
  rgba: Uint8Array;
}

/** A PNG of 1, 3 or 4 channels (Playwright's screenshots are RGB) as RGBA8, alpha 255 where absent. */
export function pngToRgba(png: Uint8Array): RgbaImage {
  const img = decodeAnyPng(png);
  const n = img.width * img.height;
  const rgba = new Uint8Array(n * 4);
  for (let i = 0; i < n; i++) {
    if (img.channels === 1) rgba.fill(img.data[i], i * 4, i * 4 + 3);
    else for (let c = 0; c < 3; c++) rgba[i * 4 + c] = img.data[i * img.channels + c];
    rgba[i * 4 + 3] = img.channels === 4 ? img.data[i * 4 + 3] : 255;
  }
  return { width: img.width, height: img.height, rgba };
}

/** The page's WebGPU adapter as a folder name: vendor-architecture, e.g. google-swiftshader. */
export async function rendererId(page: Page): Promise<string> {
  const info = await page.evaluate(async () => {
    const adapter = await navigator.gpu?.requestAdapter();
    return { vendor: adapter?.info?.vendor ?? '', architecture: adapter?.info?.architecture ?? '' };
  });
  return [info.vendor, info.architecture].filter(Boolean).join('-').replace(/[^a-z0-9-]+/gi, '_').toLowerCase() || 'unknown';
}

/** Writes actual (and expected + diff when there is one) to e2e/out/<name>.*.png; returns the paths. */
export function writeArtefacts(name: string, actual: RgbaImage, expected: RgbaImage | null): string[] {
  const dir = join(REPO_ROOT, 'e2e', 'out');
  mkdirSync(dir, { recursive: true });
  const files = [join(dir, `${name}.actual.png`)];
  writeFileSync(files[0], encodePng(actual.width, actual.height, actual.rgba));
  if (expected) {
    files.push(join(dir, `${name}.expected.png`));
    writeFileSync(files[1], encodePng(expected.width, expected.height, expected.rgba));
    if (expected.width === actual.width && expected.height === actual.height) {
      files.push(join(dir, `${name}.diff.png`));
      writeFileSync(files[2], encodePng(actual.width, actual.height, diffImage(actual.rgba, expected.rgba)));
    }
  }
  return files;
}

/**
 * Compares `actual` with the golden PNG at `golden` (a path) byte for byte. With
 * DYNTET_UPDATE_GOLDENS=1 it writes the golden instead. Throws, naming the artefacts, when the
 * golden is missing or differs; `artefactName` prefixes the files in e2e/out/.
 */
export function expectGolden(golden: string, actual: RgbaImage, artefactName: string): void {
  if (UPDATE_GOLDENS) {
    mkdirSync(dirname(golden), { recursive: true });
    writeFileSync(golden, encodePng(actual.width, actual.height, actual.rgba));
    return;
  }
  if (!existsSync(golden)) {
    const files = writeArtefacts(artefactName, actual, null);
    throw new Error(`no golden at ${golden}: review ${files.join(', ')} and refresh the goldens with DYNTET_UPDATE_GOLDENS=1`);
  }
  const expected = decodePng(readFileSync(golden));
  const same = expected.width === actual.width && expected.height === actual.height && Buffer.compare(Buffer.from(expected.rgba), Buffer.from(actual.rgba)) === 0;
  if (!same) {
    let differing = 0;
    if (expected.width === actual.width && expected.height === actual.height)
      for (let i = 0; i < actual.rgba.length; i += 4)
        if (actual.rgba[i] !== expected.rgba[i] || actual.rgba[i + 1] !== expected.rgba[i + 1] || actual.rgba[i + 2] !== expected.rgba[i + 2] || actual.rgba[i + 3] !== expected.rgba[i + 3]) differing++;
    const files = writeArtefacts(artefactName, actual, expected);
    const what = differing ? `${differing} pixels differ` : `size ${actual.width}x${actual.height}, golden ${expected.width}x${expected.height}`;
    throw new Error(`${artefactName} differs from its golden ${golden} (${what}); see ${files.join(', ')}`);
  }
}
