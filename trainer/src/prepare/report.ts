// The visual report: a contact sheet PNG and an HTML page with overlays and coefficient plots.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { blit, createImage, decodePng, drawBox, drawDot, encodePng, resize, tintMask, type Image } from '../image/index.js';
import { NUM_LANDMARKS, poseAngles } from './geometry.js';
import type { FrameRecord } from './prepare.js';

const pad = (i: number) => String(i).padStart(6, '0');

function overlay(out: string, r: FrameRecord, lm: Float32Array): Image {
  const img = decodePng(readFileSync(join(out, r.file)));
  if (!r.valid) return img;
  const head = decodePng(readFileSync(join(out, 'masks', 'head', `${pad(r.index)}.png`)));
  tintMask(img, head, [40, 200, 255], 0.3);
  const o = r.index * NUM_LANDMARKS * 3;
  for (let i = 0; i < NUM_LANDMARKS; i++) drawDot(img, lm[o + 3 * i], lm[o + 3 * i + 1], 1, [255, 255, 0], 0.8);
  const b = r.boxes!;
  drawBox(img, b.mouth, [255, 60, 60]);
  drawBox(img, b.leftEye, [60, 255, 60]);
  drawBox(img, b.rightEye, [60, 255, 60]);
  drawBox(img, b.head, [255, 255, 255]);
  return img;
}

function plot(title: string, series: Array<{ name: string; color: string; values: number[] }>, lo: number, hi: number): string {
  const W = 720, H = 180, n = Math.max(2, series[0].values.length);
  const x = (i: number) => 40 + (i / (n - 1)) * (W - 50);
  const y = (v: number) => 10 + (1 - (v - lo) / (hi - lo)) * (H - 30);
  const lines = series.map((s) => {
    const d = s.values.map((v, i) => (Number.isFinite(v) ? `${x(i).toFixed(1)},${y(v).toFixed(1)}` : '')).filter(Boolean).join(' ');
    return `<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${d}"/>`;
  });
  const legend = series.map((s, k) => `<text x="${50 + k * 140}" y="${H - 4}" fill="${s.color}" font-size="12">${s.name}</text>`).join('');
  return `<h3>${title}</h3><svg width="${W}" height="${H}" style="background:#111"><text x="2" y="${y(hi) + 4}" fill="#aaa" font-size="10">${hi}</text><text x="2" y="${y(lo)}" fill="#aaa" font-size="10">${lo}</text>${lines.join('')}${legend}</svg>`;
}

export function writeReport(out: string, records: FrameRecord[], lm: Float32Array, names: string[], size: number): void {
  const dir = join(out, 'report');
  mkdirSync(dir, { recursive: true });
  const picks = Array.from({ length: Math.min(12, records.length) }, (_, k) => Math.round((k * (records.length - 1)) / Math.max(1, Math.min(12, records.length) - 1)));
  const thumb = 256;
  const cols = 4, rows = Math.ceil(picks.length / cols);
  const sheet = createImage(cols * thumb, rows * thumb, 3);
  const cells: string[] = [];
  picks.forEach((idx, k) => {
    const img = overlay(out, records[idx], lm);
    blit(sheet, resize(img, thumb, thumb), (k % cols) * thumb, Math.floor(k / cols) * thumb);
    const f = `overlay_${pad(idx)}.png`;
    writeFileSync(join(dir, f), encodePng(img, { level: 3 }));
    cells.push(`<figure><img src="${f}" width="${Math.min(size, 320)}"><figcaption>frame ${idx}${records[idx].valid ? '' : ' (excluded: no face)'}</figcaption></figure>`);
  });
  writeFileSync(join(dir, 'contact_sheet.png'), encodePng(sheet));
  const bs = (name: string) => records.map((r) => (r.valid ? r.blendshapes![names.indexOf(name)] : NaN));
  const ang = records.map((r) => (r.valid ? poseAngles(r.pose!) : [NaN, NaN, NaN]));
  const html = `<!doctype html><html><head><meta charset="utf-8"><title>dyntet dataset report</title>
<style>body{font:14px sans-serif;background:#222;color:#eee}figure{display:inline-block;margin:4px}img{display:block}</style></head><body>
<h1>Dataset report</h1><p>${records.length} frames, ${records.filter((r) => r.valid).length} with a face. Overlays: head mask (blue), landmarks (yellow), mouth box (red), eye boxes (green), head box (white).</p>
<img src="contact_sheet.png" width="${cols * 200}"><div>${cells.join('')}</div>
${plot('Blendshapes', [
    { name: 'jawOpen', color: '#f55', values: bs('jawOpen') },
    { name: 'eyeBlinkLeft', color: '#5f5', values: bs('eyeBlinkLeft') },
    { name: 'eyeBlinkRight', color: '#5af', values: bs('eyeBlinkRight') },
    { name: 'mouthSmileLeft', color: '#fd5', values: bs('mouthSmileLeft') },
  ], 0, 1)}
${plot('Pose angles (degrees)', [
    { name: 'yaw', color: '#f55', values: ang.map((a) => a[0]) },
    { name: 'pitch', color: '#5f5', values: ang.map((a) => a[1]) },
    { name: 'roll', color: '#5af', values: ang.map((a) => a[2]) },
  ], -45, 45)}
</body></html>`;
  writeFileSync(join(dir, 'index.html'), html);
}
