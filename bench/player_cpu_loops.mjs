// CPU loops of playback: plain TypeScript (the loops sdk/src/tracks.ts ran before, below) against the
// AssemblyScript SIMD build (wasm/as/loops.ts), kernel only and with the copies into and out of
// wasm memory a real caller pays. Build first: npm run build:sdk && node wasm/as/build.mjs
//   node bench/player_cpu_loops.mjs
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const ts = await import(pathToFileURL(join(root, 'sdk', 'dist', 'index.js')).href);
const { instance } = await WebAssembly.instantiate(readFileSync(join(root, 'wasm', 'out', 'as', 'loops.wasm')), { env: { abort: () => { throw new Error('abort'); } } });
const as = instance.exports;

function time(fn, minMs = 300) {
  fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < minMs) { fn(); n++; t = performance.now(); }
  return (t - t0) / n;
}
const mem = () => as.memory.buffer;
// The plain TypeScript loops these kernels replaced in sdk/src/tracks.ts, kept here as the baseline.
const plain = {
  dequantize16(src, scale, offset, dst) {
    const sc = Math.fround(scale), o = Math.fround(offset);
    for (let i = 0; i < src.length; i++) dst[i] = o + sc * src[i];
  },
  smoothTrack(track, channels, alpha) {
    for (let i = channels; i < track.length; i++) track[i] = track[i - channels] + alpha * (track[i] - track[i - channels]);
  },
  resampleTrack(src, channels, fpsIn, fpsOut) {
    const nIn = src.length / channels;
    const nOut = Math.max(1, Math.floor(((nIn - 1) * fpsOut) / fpsIn) + 1);
    const out = new Float32Array(nOut * channels);
    for (let f = 0; f < nOut; f++) {
      const x = (f * fpsIn) / fpsOut;
      const i0 = Math.min(Math.floor(x), nIn - 1), i1 = Math.min(i0 + 1, nIn - 1), w = x - i0;
      for (let c = 0; c < channels; c++) out[f * channels + c] = src[i0 * channels + c] + w * (src[i1 * channels + c] - src[i0 * channels + c]);
    }
    return out;
  },
};
const rows = [];
function maxDiff(a, b) { let m = 0; for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i])); return m; }

// One frame of a baked basis, the size of the may_5s avatar's clip: 8 vectors of 44,087 active
// vertices x 4 (the player runs this once per frame of a basis-form clip).
{
  const k = 8, n = 44087 * 4, frames = 125;
  const mean = new Float32Array(n).map((_, i) => Math.sin(i) * 0.01);
  const vectors = new Float32Array(k * n).map((_, i) => Math.cos(i * 0.37) * 0.001);
  const weights = new Float32Array(frames * k).map((_, i) => Math.sin(i * 1.7));
  const basis = { size: k, mean, vectors, weights };
  const out = new Float32Array(n);
  const f = 17;
  const tTs = time(() => ts.expandBakedFrame(basis, f, out));
  as.reset();
  const pm = as.alloc(n * 4), pb = as.alloc(k * n * 4), pw = as.alloc(k * 4), po = as.alloc(n * 4);
  new Float32Array(mem(), pm, n).set(mean);
  new Float32Array(mem(), pb, k * n).set(vectors);
  new Float32Array(mem(), pw, k).set(weights.subarray(f * k, f * k + k));
  const kernel = () => as.expandBakedFrame(pm, pb, pw, k, n, po);
  const tAs = time(kernel);
  const res = new Float32Array(n);
  // With copies: the weights in, the frame out (mean and vectors stay in wasm memory for a clip).
  const tAsCopy = time(() => { new Float32Array(mem(), pw, k).set(weights.subarray(f * k, f * k + k)); kernel(); res.set(new Float32Array(mem(), po, n)); });
  rows.push(['expandBakedFrame, 8 x 176k (may_5s)', tTs, tAs, tAsCopy, maxDiff(out, new Float32Array(mem(), po, n))]);
}

// Dequantise a hash-grid table: 16 levels x 2^15 entries x 2 features.
{
  const n = 16 * (1 << 15) * 2;
  const q = new Uint16Array(n).map((_, i) => (i * 2654435761) >>> 16);
  const dst = new Float32Array(n);
  as.reset();
  const ps = as.alloc(n * 2), pd = as.alloc(n * 4);
  const tTs = time(() => plain.dequantize16(q, 1 / 32768, -1, dst));
  const kernel = () => as.dequantize16(ps, n, 1 / 32768, -1, pd);
  new Uint16Array(mem(), ps, n).set(q);
  const tAs = time(kernel);
  const out = new Float32Array(n);
  const tAsCopy = time(() => { new Uint16Array(mem(), ps, n).set(q); kernel(); out.set(new Float32Array(mem(), pd, n)); });
  rows.push(['dequantize16, 1M values', tTs, tAs, tAsCopy, maxDiff(dst, new Float32Array(mem(), pd, n))]);
}
// Smooth a one-minute track at 25 fps (1500 x 52).
{
  const frames = 1500, ch = 52;
  const src = new Float32Array(frames * ch).map((_, i) => Math.sin(i * 0.37) * 0.5 + 0.5);
  const a = src.slice();
  const tTs = time(() => { a.set(src); plain.smoothTrack(a, ch, 0.3); });
  as.reset();
  const p = as.alloc(src.byteLength);
  const view = () => new Float32Array(mem(), p, src.length);
  const tAs = time(() => { view().set(src); as.smoothTrack(p, frames, ch, 0.3); });
  const out = new Float32Array(src.length);
  const tAsCopy = time(() => { view().set(src); as.smoothTrack(p, frames, ch, 0.3); out.set(view()); });
  rows.push(['smoothTrack, 1500 x 52', tTs, tAs, tAsCopy, maxDiff(a, view())]);
}
// Resample that track from 25 to 30 fps.
{
  const frames = 1500, ch = 52;
  const src = new Float32Array(frames * ch).map((_, i) => Math.cos(i * 0.11));
  let r;
  const tTs = time(() => { r = plain.resampleTrack(src, ch, 25, 30); });
  const nOut = r.length / ch;
  as.reset();
  const ps = as.alloc(src.byteLength), pd = as.alloc(r.byteLength);
  new Float32Array(mem(), ps, src.length).set(src);
  const tAs = time(() => as.resampleTrack(ps, frames, ch, 25, 30, pd, nOut));
  const out = new Float32Array(r.length);
  const tAsCopy = time(() => { new Float32Array(mem(), ps, src.length).set(src); as.resampleTrack(ps, frames, ch, 25, 30, pd, nOut); out.set(new Float32Array(mem(), pd, r.length)); });
  rows.push(['resampleTrack 25->30 fps, 1500 x 52', tTs, tAs, tAsCopy, maxDiff(r, new Float32Array(mem(), pd, r.length))]);
}
{
  const n = 16 * (1 << 15) * 2;
  const q = new Uint16Array(n).map((_, i) => (i * 2654435761) >>> 16);
  const dst = new Float32Array(n), ref = new Float32Array(n);
  plain.dequantize16(q, 1 / 32768, -1, ref);
  const tSdk = time(() => ts.dequantize16(q, 1 / 32768, -1, dst));
  rows.push(['dequantize16, 1M values, as the SDK exports it', time(() => plain.dequantize16(q, 1 / 32768, -1, ref)), NaN, tSdk, maxDiff(ref, dst)]);
}
console.log(`# CPU loops of playback, Node ${process.version}, ${new Date().toISOString()}`);
console.log('');
console.log('| loop | TypeScript ms | AssemblyScript SIMD ms (kernel) | AS ms with copies | AS / TS (with copies) | max abs diff |');
console.log('| --- | ---: | ---: | ---: | ---: | ---: |');
for (const [name, a, b, c, d] of rows) console.log(`| ${name} | ${a.toFixed(4)} | ${b.toFixed(4)} | ${c.toFixed(4)} | ${(c / a).toFixed(2)} | ${d.toExponential(1)} |`);
