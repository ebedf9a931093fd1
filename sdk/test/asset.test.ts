// decodeAsset through the real WebAssembly build of the C++ reader: files written by the native
// writer decode, every kind of damage gives its code, and the fuzz corpus gets the same verdicts
// in WASM as in the native replay (native/tests/test_asset.cpp --corpus).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../../e2e/support/shared.js';
import { AssetError, assetToModel, decodeAsset } from '../src/asset.js';
import { validateModel } from '../src/model.js';

const FIXTURE = join(REPO_ROOT, 'build', 'fixtures', 'synthetic.dyntet');
const CORPUS = join(REPO_ROOT, 'native', 'fuzz', 'corpus');

async function code(bytes: Uint8Array): Promise<string> {
  try {
    await decodeAsset(bytes);
    return 'OK';
  } catch (e) {
    expect(e).toBeInstanceOf(AssetError);
    expect((e as AssetError).message.length).toBeGreaterThan(20);
    return (e as AssetError).code;
  }
}

describe('decodeAsset (WASM reader)', () => {
  it('decodes the natively written synthetic avatar into consistent typed arrays', async () => {
    const a = await decodeAsset(readFileSync(FIXTURE));
    const m = a.metadata;
    expect(m.format).toBe('dyntet');
    expect(m.frame.width).toBeGreaterThan(0);
    expect(a.sdf.length).toBe((m.grid.res + 1) ** 3);
    expect(a.elasticScale.length).toBe(a.sdf.length);
    expect(a.active.length).toBeGreaterThan(0);
    for (let i = 1; i < a.active.length; i++) expect(a.active[i]).toBeGreaterThan(a.active[i - 1]);
    expect(a.hashTables.length).toBe(m.texture.grid.levels * 2 ** m.texture.grid.log2Table * m.texture.grid.features);
    expect(a.clips.length).toBeGreaterThan(0);
    expect(a.clips[0].coefficients.length).toBe(a.clips[0].frames * 68);
    // The surface exists: some vertices inside, some outside.
    expect(a.sdf.some((v) => v < 0) && a.sdf.some((v) => v > 0)).toBe(true);
    const model = await assetToModel(a);
    expect(() => validateModel(model)).not.toThrow();
    expect(model.clips[0].poses.length).toBe(a.clips[0].frames * 16);
  });

  it('gives a specific code for each kind of damage', async () => {
    const good = new Uint8Array(readFileSync(FIXTURE));
    expect(await code(good.subarray(0, 0))).toBe('TRUNCATED');
    expect(await code(good.subarray(0, 20))).toBe('TRUNCATED');
    const magic = good.slice();
    magic[2] = 0;
    expect(await code(magic)).toBe('BAD_MAGIC');
    const major = good.slice();
    major[8] = 9;
    expect(await code(major)).toBe('UNSUPPORTED_VERSION');
    const crc = good.slice();
    crc[good.length >> 1] ^= 0x40;
    expect(await code(crc)).toBe('CHECKSUM_MISMATCH');
    expect(await code(good.subarray(0, good.length - 7))).not.toBe('OK');
    expect(await code(new TextEncoder().encode('<html>not an asset</html>'))).toBe('BAD_MAGIC');
  });

  it('agrees with the native reader on every fuzz-corpus file', async () => {
    const files = readdirSync(CORPUS).filter((f) => !f.startsWith('.'));
    expect(files.length).toBeGreaterThan(5);
    for (const f of files) {
      const c = await code(new Uint8Array(readFileSync(join(CORPUS, f))));
      const wantOk = f.startsWith('valid_') || f.startsWith('unknown_');
      expect(c === 'OK', `${f}: ${c}`).toBe(wantOk);
    }
  });
});
