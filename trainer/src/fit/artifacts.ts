/**
 * What a finished fit run leaves for people to look at: held-out frames beside the real ones, the
 * canonical and a few driven meshes (OBJ), and the HTML report (report/index.html) with the curves.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { BLENDSHAPE_NAMES } from '@dyntet/player';
import { encodePng, floatToImage } from '../image/index.js';
import type { NativeTrainer } from '../native/index.js';
import { reportRunDir, writeMesh, type Mesh } from '../report/index.js';
import { conditionWindow, type FitData } from './data.js';

/** Triangle soup (9 floats per triangle) to an indexed mesh, merging corners closer than 1e-4 cm. */
export function indexSoup(soup: Float32Array): Mesh {
  const key = new Map<string, number>();
  const pos: number[] = [];
  const tris = new Uint32Array(soup.length / 3);
  for (let c = 0; c < soup.length / 3; c++) {
    const x = soup[c * 3], y = soup[c * 3 + 1], z = soup[c * 3 + 2];
    const k = `${Math.round(x * 1e4)},${Math.round(y * 1e4)},${Math.round(z * 1e4)}`;
    let id = key.get(k);
    if (id === undefined) { id = pos.length / 3; key.set(k, id); pos.push(x, y, z); }
    tris[c] = id;
  }
  return { positions: new Float32Array(pos), triangles: tris };
}

/** Writes val/<frame>_real.png + _ours.png, meshes/*.obj and report/index.html; returns the report path. */
export function writeRunArtifacts(t: NativeTrainer, data: FitData, dir: string, maxFrames = 6): string {
  const window = t.config().cond_window;
  const S = data.size;
  mkdirSync(join(dir, 'val'), { recursive: true });
  const step = Math.max(1, Math.floor(data.val.length / maxFrames));
  for (let k = 0; k < data.val.length && k / step < maxFrames; k += step) {
    const f = data.val[k];
    const id = String(f.index).padStart(6, '0');
    const r = t.render({ pose: f.pose, window: conditionWindow(data.blendshapes, f.index, window), background: data.background });
    writeFileSync(join(dir, 'val', `${id}_real.png`), encodePng({ width: S, height: S, channels: 3, data: f.image }));
    writeFileSync(join(dir, 'val', `${id}_ours.png`), encodePng(floatToImage(r.rgb, S, S)));
  }
  // Meshes: canonical (neutral coefficients) and the held-out frames with the widest and the
  // most closed jaw, in canonical face space (cm).
  mkdirSync(join(dir, 'meshes'), { recursive: true });
  writeMesh(join(dir, 'meshes', 'canonical.obj'), indexSoup(t.extractMesh()), 'DynTet canonical surface, neutral coefficients, cm');
  const jaw = BLENDSHAPE_NAMES.indexOf('jawOpen');
  const byJaw = [...data.val].sort((a, b) => data.blendshapes[b.index][jaw] - data.blendshapes[a.index][jaw]);
  for (const [name, f] of [['jaw-open', byJaw[0]], ['jaw-closed', byJaw[byJaw.length - 1]]] as const) {
    const w = conditionWindow(data.blendshapes, f.index, window);
    writeMesh(join(dir, 'meshes', `${name}-frame${f.index}.obj`), indexSoup(t.extractMesh(w)),
      `DynTet surface driven by held-out frame ${f.index} (jawOpen ${data.blendshapes[f.index][jaw].toFixed(2)}), cm`);
  }
  return reportRunDir(dir);
}
