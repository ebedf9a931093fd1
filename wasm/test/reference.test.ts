// The WASM build of the CPU reference renderer against the native build of the same C++: the same
// asset, coefficients and pose must give the same bytes (the core is compiled without FMA
// contraction on both sides). Also: a damaged asset is refused with the reader's message.
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../e2e/support/shared.js';
import { BLENDSHAPE_NAMES } from '../../sdk/src/coefficients.js';
import { ReferenceRenderer, ReferenceRendererError, type ReferenceWasm } from '../../sdk/src/reference.js';

const TOOL = join(REPO_ROOT, 'native', 'build', 'tools', 'make_synthetic_avatar');
const ASSET = join(REPO_ROOT, 'build', 'fixtures', 'synthetic.dyntet');
const MODULE = join(REPO_ROOT, 'wasm', 'out', 'dyntet_reference.mjs');

async function loadWasm(): Promise<ReferenceWasm> {
  const factory = (await import(MODULE)).default as (o: object) => Promise<ReferenceWasm>;
  // emcc's ES module would fetch the .wasm by URL; hand it the bytes instead (works in Node and browsers).
  return factory({ wasmBinary: readFileSync(MODULE.replace(/\.mjs$/, '.wasm')) });
}

describe('reference renderer: WASM build vs native build', () => {
  let wasm: ReferenceWasm;
  beforeAll(async () => {
    for (const p of [TOOL, ASSET, MODULE])
      if (!existsSync(p)) throw new Error(`${p} is missing: run npm run build first`);
    wasm = await loadWasm();
  });

  for (const [label, sets, yaw] of [
    ['neutral', [] as string[], 0],
    ['jaw open, turned', ['jawOpen=0.8'], 15],
    ['blink', ['eyeBlinkLeft=1', 'eyeBlinkRight=1'], -10],
  ] as const) {
    it(`gives identical bytes: ${label}`, () => {
      const dir = mkdtempSync(join(tmpdir(), 'dyntet-ref-'));
      const out = join(dir, 'native.rgba');
      const args = ['render', '--in', ASSET, '--out', out, '--yaw', String(yaw)];
      for (const s of sets) args.push('--set', s);
      const log = execFileSync(TOOL, args, { encoding: 'utf8' });
      const pose = Float32Array.from(/pose:((?: \S+){16})/.exec(log)![1].trim().split(' ').map(Number));
      const native = new Uint8Array(readFileSync(out));

      const renderer = ReferenceRenderer.open(wasm, new Uint8Array(readFileSync(ASSET)));
      try {
        const frame = new Float32Array(52);
        for (const s of sets) {
          const [name, v] = s.split('=');
          frame[BLENDSHAPE_NAMES.indexOf(name as never)] = Number(v);
        }
        const win = new Float32Array(renderer.window * 52);
        for (let j = 0; j < renderer.window; ++j) win.set(frame, j * 52);
        const img = renderer.render({ window: win, pose });
        expect(img.data.length).toBe(native.length);
        // RGB must match exactly; alpha differs by design (the C API returns coverage, the tool opaque).
        let differing = 0;
        for (let i = 0; i < native.length; ++i) if ((i & 3) !== 3 && img.data[i] !== native[i]) ++differing;
        expect(differing).toBe(0);
        // And the frame is not trivially empty: the head covers a good part of it.
        let varied = 0;
        for (let i = 4; i < native.length; i += 4) if (native[i] !== native[i - 4]) ++varied;
        expect(varied).toBeGreaterThan(1000);
      } finally {
        renderer.dispose();
      }
    });
  }

  it('a file written by the WASM writer reads natively, with the native writer\'s exact bytes', () => {
    const w = wasm as ReferenceWasm & { _dt_rewrite(p: number, n: number): number; _dt_rewrite_data(): number };
    const original = new Uint8Array(readFileSync(ASSET));
    const p = w._malloc(original.length);
    w.HEAPU8.set(original, p);
    const n = w._dt_rewrite(p, original.length);
    w._free(p);
    expect(n).toBeGreaterThan(0);
    const written = w.HEAPU8.slice(w._dt_rewrite_data(), w._dt_rewrite_data() + n);
    // The fixture was written natively: the WASM writer reproduces it byte for byte.
    expect(Buffer.compare(Buffer.from(written), Buffer.from(original))).toBe(0);
    // And the native reader takes the WASM-written file (the tool renders from it).
    const dir = mkdtempSync(join(tmpdir(), 'dyntet-rw-'));
    writeFileSync(join(dir, 'wasm.dyntet'), written);
    const log = execFileSync(TOOL, ['render', '--in', join(dir, 'wasm.dyntet'), '--out', join(dir, 'x.rgba')], { encoding: 'utf8' });
    expect(log).toMatch(/rendered/);
  });

  it('refuses a damaged asset with the reader message', () => {
    const bytes = new Uint8Array(readFileSync(ASSET));
    bytes[bytes.length >> 1] ^= 0xff; // inside a payload (the table is at the end)
    expect(() => ReferenceRenderer.open(wasm, bytes)).toThrow(ReferenceRendererError);
    try {
      ReferenceRenderer.open(wasm, bytes);
    } catch (e) {
      expect(String((e as Error).message)).toMatch(/CRC|damaged|checksum/i);
    }
    expect(() => ReferenceRenderer.open(wasm, bytes.subarray(0, 10))).toThrow(/header|short|truncated/i);
  });
});
