import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { createImage, decodePng, drawBox, encodePng, fillPolygon, PngError, resize, type Channels } from '../src/image/index.js';
import { Progress, formatDuration } from '../src/progress.js';

const tmp = mkdtempSync(join(tmpdir(), 'dyntet-image-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function noise(w: number, h: number, ch: Channels, seed: number) {
  const img = createImage(w, h, ch);
  let s = seed;
  for (let i = 0; i < img.data.length; i++) {
    s = (s * 1103515245 + 12345) >>> 0;
    img.data[i] = (s >>> 16) & 0xff;
  }
  return img;
}

describe('PNG', () => {
  for (const ch of [1, 3, 4] as Channels[]) {
    it(`round-trips ${ch}-channel images`, () => {
      const img = noise(37, 23, ch, ch);
      const back = decodePng(encodePng(img));
      expect(back).toMatchObject({ width: 37, height: 23, channels: ch });
      expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
    });
  }

  it('reads PNGs written by ffmpeg (other filters) and ffmpeg reads ours', () => {
    const img = noise(31, 17, 3, 7);
    const ours = join(tmp, 'ours.png');
    writeFileSync(ours, encodePng(img));
    // ffmpeg's encoder picks its own filters (Paeth etc.), exercising every unfilter path.
    const theirs = join(tmp, 'theirs.png');
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-i', ours, '-pred', 'mixed', theirs]);
    const back = decodePng(readFileSync(theirs));
    expect(Buffer.from(back.data).equals(Buffer.from(img.data))).toBe(true);
    const raw = execFileSync('ffmpeg', ['-v', 'error', '-i', ours, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-']);
    expect(Buffer.from(raw).equals(Buffer.from(img.data))).toBe(true);
  });

  it('rejects malformed files with a PngError', () => {
    const good = encodePng(noise(8, 8, 3, 1));
    expect(() => decodePng(new Uint8Array(10))).toThrow(PngError);
    expect(() => decodePng(good.subarray(0, good.length - 20))).toThrow(/truncated|CRC/);
    const bad = good.slice();
    bad[40] ^= 0xff;
    expect(() => decodePng(bad)).toThrow(PngError);
    expect(() => encodePng({ width: 4, height: 4, channels: 3, data: new Uint8Array(5) })).toThrow(/expected 48/);
  });
});

describe('drawing', () => {
  it('fills exactly the pixels whose centres are inside a polygon', () => {
    const img = createImage(10, 10, 1);
    fillPolygon(img, [[2, 2], [6, 2], [6, 5], [2, 5]], [255]);
    let n = 0;
    for (const v of img.data) n += v ? 1 : 0;
    expect(n).toBe(12);
    expect(img.data[2 * 10 + 2]).toBe(255);
    expect(img.data[5 * 10 + 2]).toBe(0);
  });

  it('draws boxes and resizes by area', () => {
    const img = createImage(8, 8, 3);
    drawBox(img, [1, 1, 6, 6], [255, 0, 0]);
    expect(Array.from(img.data.subarray((1 * 8 + 1) * 3, (1 * 8 + 1) * 3 + 3))).toEqual([255, 0, 0]);
    const small = resize(img, 4, 4);
    expect(small.width).toBe(4);
    expect(small.data[0]).toBe(Math.round(255 / 4));
  });
});

describe('Progress', () => {
  it('reports rate and ETA from its clock', () => {
    let t = 0;
    const lines: string[] = [];
    const stream = { isTTY: false, write: (s: string) => (lines.push(s), true) } as unknown as NodeJS.WriteStream;
    const p = new Progress('track', 100, { unit: 'frames', stream, now: () => t });
    t = 2000;
    p.update(50);
    expect(p.rate()).toBeCloseTo(25);
    expect(p.eta()).toBeCloseTo(2);
    expect(p.line()).toContain('50/100 25.0 frames/s ETA 0:02');
    p.finish();
    expect(lines.at(-1)).toContain('100/100');
    expect(formatDuration(3725)).toBe('1:02:05');
  });
});

describe('float images', async () => {
  const { floatToImage, imageToFloat, rgbaImage } = await import('../src/image/index.js');
  it('round-trips 8-bit values, clamps out-of-range floats, repeats gray and drops alpha', () => {
    const img = floatToImage(new Float32Array([0, 0.5, 1, -0.2, 1.7, 254.6 / 255]), 2, 1);
    expect(Array.from(img.data)).toEqual([0, 128, 255, 0, 255, 255]);
    expect(Array.from(imageToFloat(img)).map((v) => Math.round(v * 255))).toEqual([0, 128, 255, 0, 255, 255]);
    const gray = floatToImage(new Float32Array([0.25]), 1, 1, 1);
    expect(Array.from(imageToFloat(gray)).map((v) => Math.round(v * 255))).toEqual([64, 64, 64]);
    const rgba = rgbaImage(new Uint8ClampedArray([10, 20, 30, 40]), 1, 1);
    expect(Array.from(imageToFloat(rgba)).map((v) => Math.round(v * 255))).toEqual([10, 20, 30]);
  });
});
