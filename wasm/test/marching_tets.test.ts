// Marching tetrahedra from the WASM build and from the native build give bit-identical meshes
// (positions, canonical positions, triangles) for the same SDF values.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../e2e/support/shared.js';

const TOOL = join(REPO_ROOT, 'native', 'build', 'bench_marching_tets');
const MODULE = join(REPO_ROOT, 'wasm', 'out', 'dyntet_reference.mjs');

interface MtWasm {
  HEAPU8: Uint8Array;
  _malloc(n: number): number;
  _free(p: number): void;
  _dt_mt_run(res: number, box: number, sdf: number, disp: number): number;
  _dt_mt_vertex_count(): number;
  _dt_mt_positions(): number;
  _dt_mt_canonical(): number;
  _dt_mt_triangles(): number;
}

// SDF values made in JS (the native side reads these exact floats from a file).
function bumpySdf(R: number, seed: number): Float32Array {
  const n = R + 1;
  const out = new Float32Array(n * n * n);
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const x = -1 + (2 * i) / R, y = -1 + (2 * j) / R, z = -1 + (2 * k) / R;
        out[i + n * (j + n * k)] = Math.hypot(x, y, z) - 0.6 - 0.08 * Math.sin(seed * x + 3 * y) * Math.cos(5 * z - seed);
      }
  return out;
}

export function wasmMesh(w: MtWasm, R: number, sdf: Float32Array): Uint8Array {
  const box = new Float32Array([-1, -1, -1, 1, 1, 1]);
  const p = w._malloc(box.byteLength + sdf.byteLength);
  w.HEAPU8.set(new Uint8Array(box.buffer), p);
  w.HEAPU8.set(new Uint8Array(sdf.buffer), p + box.byteLength);
  const nt = w._dt_mt_run(R, p, p + box.byteLength, 0);
  w._free(p);
  if (nt < 0) throw new Error('dt_mt_run refused the grid');
  const nv = w._dt_mt_vertex_count();
  const parts = [new Uint8Array(new Uint32Array([nv, nt]).buffer), w.HEAPU8.slice(w._dt_mt_positions(), w._dt_mt_positions() + nv * 12),
    w.HEAPU8.slice(w._dt_mt_canonical(), w._dt_mt_canonical() + nv * 12), w.HEAPU8.slice(w._dt_mt_triangles(), w._dt_mt_triangles() + nt * 12)];
  const out = new Uint8Array(parts.reduce((s, a) => s + a.length, 0));
  let at = 0;
  for (const a of parts) { out.set(a, at); at += a.length; }
  return out;
}

describe('marching tetrahedra: WASM build vs native build', () => {
  let w: MtWasm;
  beforeAll(async () => {
    const factory = (await import(MODULE)).default as (o: object) => Promise<MtWasm>;
    w = await factory({ wasmBinary: readFileSync(MODULE.replace(/\.mjs$/, '.wasm')) });
  });

  for (const [R, seed] of [[32, 7], [64, 11]] as const) {
    it(`bit-identical mesh at R = ${R}`, () => {
      const sdf = bumpySdf(R, seed);
      const dir = mkdtempSync(join(tmpdir(), 'dyntet-mt-'));
      writeFileSync(join(dir, 'sdf.f32'), sdf);
      execFileSync(TOOL, ['--dump', String(R), join(dir, 'sdf.f32'), join(dir, 'mesh.bin')]);
      const native = new Uint8Array(readFileSync(join(dir, 'mesh.bin')));
      const wasm = wasmMesh(w, R, sdf);
      const nt = new Uint32Array(native.buffer, native.byteOffset, 2)[1];
      expect(nt).toBeGreaterThan(1000);
      expect(wasm.length).toBe(native.length);
      expect(Buffer.compare(Buffer.from(wasm), Buffer.from(native))).toBe(0);
    });
  }
});
