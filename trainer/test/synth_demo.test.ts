// `dyntet-train demo --sheet` on the synthetic avatar, through the real native renderer: the contact
// sheet and stills are written, and the stills differ where the expressions say they should.
import { mkdtempSync, readFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runDemo, STILLS } from '../src/commands/demo.js';
import { writeSyntheticAvatar } from '../src/commands/synth.js';
import { decodePng, type Image } from '../src/image/index.js';

let dir = '';
let result: Awaited<ReturnType<typeof runDemo>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dyntet-demo-test-'));
  const avatar = join(dir, 'avatar.dyntet');
  writeSyntheticAvatar({ out: avatar, resolution: 32, width: 128, height: 128, frames: 10 });
  result = await runDemo({ out: join(dir, 'out'), avatar, clipFrames: 6, video: false });
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

function still(name: string): Image {
  return decodePng(readFileSync(join(dir, 'out', 'stills', `${name}.png`)));
}

/** Mean absolute difference of two images over a pixel box [x0, x1) x [y0, y1). */
function diff(a: Image, b: Image, x0: number, y0: number, x1: number, y1: number): number {
  let s = 0;
  for (let y = y0; y < y1; y++)
    for (let x = x0; x < x1; x++)
      for (let c = 0; c < 3; c++) s += Math.abs(a.data[(y * a.width + x) * a.channels + c] - b.data[(y * b.width + x) * b.channels + c]);
  return s / ((x1 - x0) * (y1 - y0) * 3);
}

describe('dyntet-train demo --sheet', () => {
  it('writes the contact sheet, its legend and one still per expression', () => {
    const sheet = decodePng(readFileSync(result.sheet));
    // 8 stills + 6 clip frames = 14 cells, 4 per row, 128 px cells with 4 px gaps.
    expect(sheet.width).toBe(4 * 128 + 3 * 4);
    expect(sheet.height).toBe(4 * 128 + 3 * 4);
    expect(result.stills).toHaveLength(STILLS.length);
    expect(readFileSync(join(dir, 'out', 'contact_sheet.txt'), 'utf8')).toContain('jawOpen 1');
    expect(result.video).toBeUndefined();
    expect(existsSync(join(dir, 'out', 'clip.mp4'))).toBe(false);
  });

  it('shows the head over the plate, the mouth opening in the lower face and blinks at the eyes', () => {
    const neutral = still('neutral');
    expect(neutral.width).toBe(128);
    // The head covers the centre: the centre pixel is skin-coloured (red above blue), the corner is the plate (blue above red).
    const px = (img: Image, x: number, y: number) => [0, 1, 2].map((c) => img.data[(y * img.width + x) * img.channels + c]);
    const [cr, , cb] = px(neutral, 64, 60);
    expect(cr).toBeGreaterThan(cb + 40);
    const [kr, , kb] = px(neutral, 2, 2);
    expect(kb).toBeGreaterThan(kr);
    // jawOpen changes the lower face (rows 70..110) and leaves the top of the head (rows 0..45) alone.
    const jaw = still('jaw-open');
    expect(diff(neutral, jaw, 40, 70, 88, 110)).toBeGreaterThan(5);
    expect(diff(neutral, jaw, 0, 0, 128, 45)).toBe(0);
    // A blink changes the eye band, not the mouth.
    const blink = still('blink');
    expect(diff(neutral, blink, 30, 45, 98, 62)).toBeGreaterThan(2);
    expect(diff(neutral, blink, 40, 75, 88, 110)).toBe(0);
  });
});
