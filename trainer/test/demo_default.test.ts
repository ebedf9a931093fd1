// `dyntet-train demo --sheet` with no --avatar renders the embedded trained avatar (the contact
// sheet of README's main command):
// 512x512 frames over its PNG plate, the mouth region responding to jawOpen.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { BLENDSHAPE_NAMES, decodeAsset, restBlendshapes } from '@dyntet/player';
import { DEFAULT_AVATAR, runDemo } from '../src/commands/demo.js';
import { synthToolPath } from '../src/commands/synth.js';
import { decodePng, type Image } from '../src/image/index.js';

let dir = '';
let result: Awaited<ReturnType<typeof runDemo>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'dyntet-demo-default-'));
  result = await runDemo({ out: join(dir, 'out'), clipFrames: 2, video: false });
}, 300_000);
afterAll(() => { if (dir) rmSync(dir, { recursive: true, force: true }); });

const still = (name: string): Image => decodePng(readFileSync(join(dir, 'out', 'stills', `${name}.png`)));
const px = (img: Image, x: number, y: number) => [0, 1, 2].map((c) => img.data[(y * img.width + x) * img.channels + c]);

describe('dyntet-train demo --sheet (default avatar)', () => {
  it('renders the trained may_5s avatar over its plate', () => {
    expect(readFileSync(join(dir, 'out', 'contact_sheet.txt'), 'utf8')).toContain('may_5s.dyntet');
    expect(DEFAULT_AVATAR).toMatch(/demos[/\\]avatars[/\\]may_5s\.dyntet$/);
    const n = still('neutral');
    expect([n.width, n.height]).toEqual([512, 512]);
    // The corners show the plate (the room behind her), not the black of an uncomposited frame.
    const corner = px(n, 500, 200);
    expect(corner[0] + corner[1] + corner[2]).toBeGreaterThan(60);
    // The centre of the face is skin: red above blue.
    const [r, , b] = px(n, 256, 250);
    expect(r).toBeGreaterThan(b + 20);
    expect(result.stills.length).toBe(8);
  });

  it('responds to jawOpen in the mouth region', () => {
    const n = still('neutral'), j = still('jaw-open');
    const mad = (x0: number, y0: number, x1: number, y1: number) => {
      let s = 0;
      for (let y = y0; y < y1; y++) for (let x = x0; x < x1; x++) for (let c = 0; c < 3; c++) s += Math.abs(n.data[(y * 512 + x) * 3 + c] - j.data[(y * 512 + x) * 3 + c]);
      return s / ((x1 - x0) * (y1 - y0) * 3);
    };
    const mouth = mad(200, 310, 320, 380), top = mad(150, 40, 360, 110);
    console.log(`jawOpen 1 vs neutral, mean abs difference: mouth ${mouth.toFixed(2)}, top of the head ${top.toFixed(2)}`);
    expect(mouth).toBeGreaterThan(2);
    // Not asserted: that the rest of the head stays put. It does not: this avatar's texture reads
    // the whole coefficient vector, so jawOpen alone changes the hair about as much (5.8 against
    // 4.7 here; from all-zero blendshapes 13.3 against 9.9). See docs/fit.md.
  });

  it('draws the stills from the clip\'s rest expression (median blendshapes), not from zeros', async () => {
    // The tool's --rest must equal setting every blendshape to the player's rest expression of the
    // decoded asset (restBlendshapes: the gallery's sliders start there), so the CPU sheet and the
    // player agree; and it must differ from the all-zero render.
    const asset = await decodeAsset(new Uint8Array(readFileSync(DEFAULT_AVATAR)));
    const clip = asset.clips[0];
    const track = new Float32Array(clip.frames * 52);
    for (let f = 0; f < clip.frames; f++) track.set(clip.coefficients.subarray(f * 68, f * 68 + 52), f * 52);
    const median = Array.from(restBlendshapes(track));
    const render = (args: string[]) => {
      const out = join(dir, `tool-${args.length}.rgba`);
      const r = spawnSync(synthToolPath(), ['render', '--in', DEFAULT_AVATAR, '--out', out, ...args], { encoding: 'utf8' });
      expect(r.status, r.stderr).toBe(0);
      return readFileSync(out);
    };
    const rest = render(['--rest']);
    const bySet = render(BLENDSHAPE_NAMES.flatMap((n, k) => ['--set', `${n}=${median[k].toPrecision(9)}`]));
    const zeros = render([]);
    expect(Buffer.compare(rest, bySet)).toBe(0);
    let diff = 0;
    for (let i = 0; i < rest.length; i++) diff += Math.abs(rest[i] - zeros[i]);
    console.log(`rest vs all-zero blendshapes: mean abs difference ${(diff / rest.length).toFixed(2)}; median jawOpen ${median[BLENDSHAPE_NAMES.indexOf('jawOpen')].toFixed(3)}`);
    expect(diff / rest.length).toBeGreaterThan(1);
    // --set still overrides the rest value of the blendshape it names.
    expect(Buffer.compare(render(['--rest', '--set', 'jawOpen=1']), rest)).not.toBe(0);
  });
});
