import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { poseFromEuler } from '@dyntet/player/sources';
import { poseCoverage } from '../src/eval/pose-coverage.js';
import { createImage, encodePng, type Image } from '../src/image/index.js';
import {
  contactSheet, diffImage, linePlot, meshToObj, meshToPly, niceTicks, parseLog, reportRunDir, ReportError, scheduleMarkers, seriesOf, writeMesh, writeSideBySide, writeVideo,
  type Mesh,
} from '../src/report/index.js';
import { findChromium } from '../src/prepare/tracker.js';

const tmp = mkdtempSync(join(tmpdir(), 'dyntet-report-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function gradient(w: number, h: number, phase: number): Image {
  const img = createImage(w, h, 3);
  for (let y = 0; y < h; y++)
    for (let x = 0; x < w; x++) {
      const o = 3 * (y * w + x);
      img.data[o] = (x * 4 + phase * 9) & 255;
      img.data[o + 1] = (y * 5) & 255;
      img.data[o + 2] = 128;
    }
  return img;
}

function ffprobe(file: string): { frames: number; width: number; height: number; codec: string } {
  const out = execFileSync('ffprobe', ['-v', 'error', '-count_frames', '-select_streams', 'v:0', '-show_entries', 'stream=nb_read_frames,width,height,codec_name', '-of', 'json', file], { encoding: 'utf8' });
  const s = JSON.parse(out).streams[0];
  return { frames: Number(s.nb_read_frames), width: s.width, height: s.height, codec: s.codec_name };
}

describe('plots and logs', () => {
  it('picks nice ticks', () => {
    expect(niceTicks(0, 10)).toEqual([0, 2, 4, 6, 8, 10]);
    expect(niceTicks(0.13, 0.91, 4)).toEqual([0.2, 0.4, 0.6, 0.8]);
  });

  it('draws one path per series and skips values a log axis cannot show', () => {
    const svg = linePlot([{ name: 'a<b', points: [[0, 1], [1, 0.1], [2, 0], [3, 0.01]] }, { name: 'c', points: [[0, 2], [3, 3]] }], { logY: true, title: 'T' });
    expect(svg.startsWith('<svg')).toBe(true);
    expect(svg.endsWith('</svg>')).toBe(true);
    expect(svg.match(/<path /g)).toHaveLength(2);
    expect(svg).toContain('a&lt;b');
    const first = /<path d="([^"]+)"/.exec(svg)![1];
    expect(first.split(/[ML]/).filter(Boolean)).toHaveLength(3); // y = 0 dropped
    expect(linePlot([], {})).toContain('no data');
  });

  it('marks schedule events inside the x range, from the run config', () => {
    const markers = scheduleMarkers({ prior_steps: 1500, deform_rigid_steps: 1000, deform_ramp_steps: 1000, pose_frames: 0, pose_start: 1500, w_landmark_motion: 0, landmark_motion_steps: 30 });
    expect(markers).toEqual([
      { x: 1000, label: 'deformation ramps in' }, { x: 1500, label: 'landmark prior ends' }, { x: 2000, label: 'deformation at full strength' },
    ]);
    expect(scheduleMarkers({ prior_steps: 0, deform_rigid_steps: 0, deform_ramp_steps: 0, pose_frames: 100, pose_start: 1500 })).toEqual([{ x: 1500, label: 'pose refinement starts' }]);
    // A marker beyond the plotted steps is left out; the others are dashed lines with their label.
    const svg = linePlot([{ name: 'loss', points: [[0, 1], [1800, 0.5]] }], { markers });
    expect(svg.match(/stroke-dasharray/g)).toHaveLength(2);
    expect(svg).toContain('deformation ramps in');
    expect(svg).not.toContain('full strength');
  });

  it('parses JSON-lines logs with nested fields and names bad lines', () => {
    const log = parseLog('{"step":1,"loss":0.5,"losses":{"photo":0.4}}\n\n{"step":2,"loss":0.25,"val":{"psnr":20}}\n');
    expect(log).toEqual([{ step: 1, loss: 0.5, 'losses.photo': 0.4 }, { step: 2, loss: 0.25, 'val.psnr': 20 }]);
    expect(seriesOf(log, (k) => k.includes('loss')).map((s) => s.name)).toEqual(['loss', 'losses.photo']);
    expect(() => parseLog('{"step":1}\nnot json', 'run/log.jsonl')).toThrow(/run\/log.jsonl line 2 is not JSON/);
    expect(() => parseLog('[1,2]')).toThrow(ReportError);
  });
});

describe('images', () => {
  it('tiles a contact sheet row by row', () => {
    const a = createImage(10, 8, 3), b = createImage(10, 8, 1);
    a.data.fill(200);
    b.data.fill(50);
    const s = contactSheet([a, b, a], { columns: 2, gap: 2, background: [1, 2, 3] });
    expect([s.width, s.height]).toEqual([2 * 10 + 3 * 2, 2 * 8 + 3 * 2]);
    const px = (x: number, y: number) => Array.from(s.data.subarray(3 * (y * s.width + x), 3 * (y * s.width + x) + 3));
    expect(px(0, 0)).toEqual([1, 2, 3]);
    expect(px(2, 2)).toEqual([200, 200, 200]);
    expect(px(14, 2)).toEqual([50, 50, 50]);
    expect(px(2, 12)).toEqual([200, 200, 200]);
    expect(px(14, 12)).toEqual([1, 2, 3]);
  });

  it('amplifies differences', () => {
    const a = createImage(1, 1, 3), b = createImage(1, 1, 3);
    b.data.set([10, 100, 0]);
    expect(Array.from(diffImage(a, b, 4).data)).toEqual([40, 255, 0]);
  });
});

describe('video', () => {
  it('writes a playable real|ours|diff MP4 with every frame', async () => {
    const out = join(tmp, 'sbs.mp4');
    const pairs = Array.from({ length: 12 }, (_, k) => ({ real: gradient(64, 48, k), ours: gradient(64, 48, k + 1) }));
    expect((await writeSideBySide(out, pairs, { fps: 25 })).frames).toBe(12);
    expect(ffprobe(out)).toEqual({ frames: 12, width: 192, height: 48, codec: 'h264' });
  });

  it('pads odd sizes so yuv420p can encode them', async () => {
    const out = join(tmp, 'odd.mp4');
    await writeVideo(out, [gradient(33, 21, 0), gradient(33, 21, 1), gradient(33, 21, 2)]);
    expect(ffprobe(out)).toEqual({ frames: 3, width: 34, height: 22, codec: 'h264' });
  });

  it('names the fix when ffmpeg is missing, and rejects frames of mixed sizes', async () => {
    const err = await writeVideo(join(tmp, 'x.mp4'), [gradient(8, 8, 0)], { ffmpeg: join(tmp, 'no-such-ffmpeg') }).catch((e) => e);
    expect(err).toBeInstanceOf(ReportError);
    expect(err.code).toBe('FFMPEG_MISSING');
    expect(err.message).toMatch(/install ffmpeg.*apt-get install ffmpeg.*DYNTET_FFMPEG/);
    await expect(writeVideo(join(tmp, 'y.mp4'), [gradient(8, 8, 0), gradient(10, 8, 0)])).rejects.toThrow(/all frames must share one size/);
  });
});

describe('meshes', () => {
  const mesh: Mesh = {
    positions: Float32Array.of(0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1.5),
    triangles: Uint32Array.of(0, 2, 1, 0, 1, 3, 0, 3, 2, 1, 2, 3),
    normals: Float32Array.of(0, 0, -1, 1, 0, 0, 0, 1, 0, 0, 0, 1),
    colors: Uint8Array.of(255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30),
  };

  it('writes OBJ that reads back', () => {
    const text = meshToObj(mesh, 'tetrahedron');
    const v = text.split('\n').filter((l) => l.startsWith('v ')).map((l) => l.split(' ').slice(1).map(Number));
    const f = text.split('\n').filter((l) => l.startsWith('f ')).map((l) => l.split(' ').slice(1).map((t) => Number(t.split('//')[0]) - 1));
    expect(text.startsWith('# tetrahedron\n')).toBe(true);
    expect(v.map((r) => r.slice(0, 3)).flat()).toEqual(Array.from(mesh.positions));
    expect(v[3].slice(3)).toEqual([Number((10 / 255).toFixed(4)), Number((20 / 255).toFixed(4)), Number((30 / 255).toFixed(4))]);
    expect(f.flat()).toEqual(Array.from(mesh.triangles));
    expect(text.split('\n').filter((l) => l.startsWith('vn '))).toHaveLength(4);
  });

  it('writes binary little-endian PLY that reads back', () => {
    const bytes = meshToPly(mesh);
    const text = new TextDecoder('latin1').decode(bytes);
    const end = text.indexOf('end_header\n') + 'end_header\n'.length;
    const header = text.slice(0, end);
    expect(header).toContain('format binary_little_endian 1.0');
    expect(header).toContain('element vertex 4');
    expect(header).toContain('element face 4');
    const dv = new DataView(bytes.buffer, bytes.byteOffset + end);
    const vs = 12 + 12 + 3;
    for (let i = 0; i < 4; i++) {
      for (let k = 0; k < 3; k++) expect(dv.getFloat32(i * vs + 4 * k, true)).toBe(mesh.positions[3 * i + k]);
      for (let k = 0; k < 3; k++) expect(dv.getUint8(i * vs + 24 + k)).toBe(mesh.colors![3 * i + k]);
    }
    for (let t = 0; t < 4; t++) {
      const o = 4 * vs + 13 * t;
      expect(dv.getUint8(o)).toBe(3);
      for (let k = 0; k < 3; k++) expect(dv.getUint32(o + 1 + 4 * k, true)).toBe(mesh.triangles[3 * t + k]);
    }
    expect(bytes.length).toBe(end + 4 * vs + 4 * 13);
  });

  it('refuses broken meshes and unknown formats', () => {
    expect(() => meshToObj({ positions: new Float32Array(6), triangles: Uint32Array.of(0, 1, 2) })).toThrow(/refers to vertex 2, but there are only 2/);
    expect(() => writeMesh(join(tmp, 'm.stl'), mesh)).toThrow(/use a .obj or .ply/);
  });
});

describe('run report', () => {
  it('writes a valid HTML report that renders its plots, frames and links in Chromium', async () => {
    const run = join(tmp, 'run');
    mkdirSync(join(run, 'val'), { recursive: true });
    mkdirSync(join(run, 'meshes'), { recursive: true });
    const lines: string[] = [];
    for (let s = 0; s <= 1000; s += 50) {
      lines.push(JSON.stringify({ step: s, loss: 1 / (1 + s), losses: { photo: 0.5 / (1 + s), mask: 0.2 / (1 + s) }, lr: 1e-3 * 0.1 ** (s / 1000) }));
      if (s % 250 === 0) lines.push(JSON.stringify({ step: s, val: { psnr: 20 + s / 100, ssim: 0.8 + s / 10000 } }));
    }
    writeFileSync(join(run, 'log.jsonl'), lines.join('\n') + '\n');
    writeFileSync(join(run, 'run.json'), JSON.stringify({ model: { prior_steps: 400, deform_rigid_steps: 300, deform_ramp_steps: 200 } }));
    writeFileSync(join(run, 'eval.json'), JSON.stringify({
      methods: [{ name: 'ours', frames: [{}, {}], mean: { full: { psnr: 33.1, ssim: 0.97 }, head: { psnr: 30.2, ssim: 0.95 } }, lmd: 2.1, msPerFrame: 12 }],
      // One of two held-out frames turns 8 degrees further than the training frames.
      poseCoverage: poseCoverage([poseFromEuler(0, 0, 0), poseFromEuler(0.1, 0, 0)],
        [{ index: 100, pose: poseFromEuler(0.05, 0, 0) }, { index: 101, pose: poseFromEuler(0.1 + (8 * Math.PI) / 180, 0, 0) }]),
    }));
    for (const k of [100, 101]) {
      writeFileSync(join(run, 'val', `${k}_real.png`), encodePng(gradient(64, 48, k)));
      writeFileSync(join(run, 'val', `${k}_ours.png`), encodePng(gradient(64, 48, k + 2)));
    }
    writeMesh(join(run, 'meshes', 'step1000.obj'), { positions: Float32Array.of(0, 0, 0, 1, 0, 0, 0, 1, 0), triangles: Uint32Array.of(0, 1, 2) });
    writeMesh(join(run, 'meshes', 'step1000.ply'), { positions: Float32Array.of(0, 0, 0, 1, 0, 0, 0, 1, 0), triangles: Uint32Array.of(0, 1, 2) });
    const html = reportRunDir(run, { title: 'test run' });
    const text = readFileSync(html, 'utf8');
    expect(text.startsWith('<!doctype html>')).toBe(true);
    expect(text).toContain("1 of 2 held-out frames turn the head beyond the training frames' range (up to 8.0 degrees in yaw");
    // run.json's schedule is marked on the curves (three events inside steps 0-1000, on each plot).
    expect(text).toContain('deformation ramps in');
    expect(text).toContain('deformation at full strength');
    expect(text).toContain('landmark prior ends');

    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: findChromium(), headless: true, args: ['--no-sandbox', '--disable-background-networking', '--no-first-run'] });
    try {
      const page = await browser.newPage();
      const errors: string[] = [];
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(html).href);
      const info = await page.evaluate(() => ({
        title: document.title,
        plots: [...document.querySelectorAll('svg')].map((s) => ({
          title: s.querySelector('text')?.textContent,
          paths: s.querySelectorAll('path').length,
          width: s.getBoundingClientRect().width,
        })),
        rows: [...document.querySelectorAll('table tr')].map((r) => [...r.children].map((c) => c.textContent)),
        images: [...document.querySelectorAll('img')].map((i) => ({ w: (i as HTMLImageElement).naturalWidth, h: (i as HTMLImageElement).naturalHeight })),
        links: [...document.querySelectorAll('a')].map((a) => a.getAttribute('href')),
      }));
      expect(errors).toEqual([]);
      expect(info.title).toBe('test run');
      expect(info.plots.map((p) => [p.title, p.paths])).toEqual([['Losses', 3], ['PSNR', 1], ['SSIM', 1], ['Learning rate', 1]]);
      for (const p of info.plots) expect(p.width).toBeGreaterThan(100);
      expect(info.rows[1].slice(0, 4)).toEqual(['ours', '33.10', '0.9700', '30.20']);
      expect(info.images).toEqual([{ w: 192, h: 48 }, { w: 192, h: 48 }]);
      expect(info.links).toEqual(['../meshes/step1000.obj', '../meshes/step1000.ply']);
    } finally {
      await browser.close();
    }
  });

  it('refuses an empty run directory', () => {
    const empty = join(tmp, 'empty');
    mkdirSync(empty);
    expect(() => reportRunDir(empty)).toThrow(/nothing to report/);
    expect(() => reportRunDir(join(tmp, 'nope'))).toThrow(/run directory not found/);
  });
});
