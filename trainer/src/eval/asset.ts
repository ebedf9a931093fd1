// Held-out frames rendered from an exported asset with the reference renderer (the player's math
// on the CPU), in the RGBA form `dyntet-train eval --rendered` reads: this scores what ships, not
// the trainer's own renders.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { coefficientTrack, loadReferenceWasm } from '../export/export.js';
import { conditionWindow } from '../fit/data.js';
import { createImage, encodePng, resize } from '../image/index.js';
import type { EvalDataset } from './dataset.js';
import { pad } from './dataset.js';
import { EvalError } from './errors.js';

/**
 * Renders `frames` (default: the held-out ones) of the dataset's own track from `assetPath` into
 * `<outDir>/<frame %06d>.png`: straight colour where the model covers the frame, coverage in alpha,
 * at the dataset's frame size. Returns milliseconds per frame.
 */
export async function renderAssetFrames(ds: EvalDataset, assetPath: string, outDir: string, frames: readonly number[] = ds.val): Promise<number> {
  if (!existsSync(assetPath)) throw new EvalError(`asset ${assetPath} not found`, 'BAD_INPUT');
  const bytes = new Uint8Array(readFileSync(assetPath));
  // The same 68-value track the trainer conditioned on: invalid frames filled from the nearest valid one.
  const tracking = JSON.parse(readFileSync(join(ds.dir, 'tracking.json'), 'utf8'));
  const track = coefficientTrack(tracking);
  const n = track.length / 68;
  const blend = Array.from({ length: n }, (_, f) => track.subarray(f * 68, f * 68 + 52));
  mkdirSync(outDir, { recursive: true });
  const { ReferenceRenderer } = await import('@dyntet/player/reference');
  const wasm = await loadReferenceWasm();
  let ref;
  try {
    ref = ReferenceRenderer.open(wasm, bytes);  // the core's decoder: refuses a corrupt asset with the reason
  } catch (e) {
    throw new EvalError(`${assetPath} is not a readable .dyntet asset (${(e as Error).message}): export it again with \`dyntet-train export <run>\``, 'BAD_INPUT');
  }
  const t0 = performance.now();
  try {
    for (const f of frames) {
      if (f < 0 || f >= n) throw new EvalError(`frame ${f} is outside the dataset's track (${n} frames)`, 'BAD_INPUT');
      // Over black: RGB is colour x coverage, so dividing by alpha gives the straight colour back.
      const r = ref.render({ window: conditionWindow(blend, f, ref.window), pose: track.slice(f * 68 + 52, f * 68 + 68) });
      let img = createImage(r.width, r.height, 4);
      for (let i = 0; i < r.width * r.height; i++) {
        const a = r.data[4 * i + 3];
        for (let c = 0; c < 3; c++) img.data[4 * i + c] = a ? Math.min(255, Math.round((r.data[4 * i + c] * 255) / a)) : 0;
        img.data[4 * i + 3] = a;
      }
      if (img.width !== ds.width || img.height !== ds.height) img = resize(img, ds.width, ds.height);
      writeFileSync(join(outDir, `${pad(f)}.png`), encodePng(img, { level: 1 }));
    }
  } finally {
    ref.dispose();
  }
  return (performance.now() - t0) / Math.max(1, frames.length);
}
