// HTML reports of training and evaluation runs: curves as inline SVG, a metrics table, validation
// frames beside the real ones (real | ours | difference), links to meshes and videos.
//
// A run directory, as `reportRunDir` reads it (every part optional except that one must exist):
//   log.jsonl              training log, JSON lines (see log.ts)
//   eval.json              { "methods": MethodResult[], "poseCoverage"? } from `dyntet-train eval`
//   val/<name>_real.png    held-out real frame, and
//   val/<name>_ours.png    the model's frame for it
//   meshes/*.obj|*.ply     extracted meshes (also *.obj|*.ply at the top level)
//   *.mp4                  videos (e.g. side-by-side from eval)
// The report goes to <run>/report/index.html with its images under <run>/report/frames/.
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join, relative } from 'node:path';
import { decodePng, encodePng, type Image } from '../image/index.js';
import type { MethodResult } from '../eval/evaluate.js';
import { describePoseCoverage, type PoseCoverage } from '../eval/pose-coverage.js';
import { ReportError } from './errors.js';
import { triptych } from './images.js';
import { readLog, seriesOf, type LogRecord } from './log.js';
import { escapeXml, linePlot, type PlotMarker } from './svg.js';

export interface MetricsTable {
  caption?: string;
  columns: string[];
  rows: Array<{ name: string; values: Array<number | string | undefined> }>;
}

export interface ReportFrame {
  label: string;
  real: Image;
  ours: Image;
}

export interface ReportInput {
  title: string;
  /** Folder to write index.html (and frames/) into; created. */
  outDir: string;
  log?: readonly LogRecord[];
  /** Schedule events drawn on every training-curve plot (scheduleMarkers of the run's config). */
  markers?: readonly PlotMarker[];
  metrics?: MetricsTable[];
  frames?: ReportFrame[];
  /** Files to link (meshes, videos, assets); paths are made relative to outDir. */
  links?: Array<{ label: string; path: string }>;
  notes?: string[];
  /** Gain of the difference panel (default 4). */
  diffGain?: number;
}

const fmtCell = (v: number | string | undefined) =>
  v === undefined ? '–' : typeof v === 'string' ? escapeXml(v) : !Number.isFinite(v) ? (v > 0 ? '∞' : '–') : Math.abs(v) >= 10 ? v.toFixed(2) : v.toFixed(4);

/** One table row per method: PSNR/SSIM over the full frame and the head box, and LMD. */
export function methodsTable(methods: readonly MethodResult[], caption?: string): MetricsTable {
  return {
    caption,
    columns: ['full PSNR (dB)', 'full SSIM', 'head PSNR (dB)', 'head SSIM', 'LMD (px)', 'mouth LMD (px)', 'frames', 'ms/frame'],
    rows: methods.map((m) => ({
      name: m.name,
      values: [m.mean.full.psnr, m.mean.full.ssim, m.mean.head.psnr, m.mean.head.ssim, m.lmd, m.lmdMouth, String(m.frames.length), m.msPerFrame.toFixed(0)],
    })),
  };
}

export function tableHtml(t: MetricsTable): string {
  const head = `<tr><th></th>${t.columns.map((c) => `<th>${escapeXml(c)}</th>`).join('')}</tr>`;
  const rows = t.rows.map((r) => `<tr><th>${escapeXml(r.name)}</th>${r.values.map((v) => `<td>${fmtCell(v)}</td>`).join('')}</tr>`).join('\n');
  return `<table>${t.caption ? `<caption>${escapeXml(t.caption)}</caption>` : ''}\n${head}\n${rows}\n</table>`;
}

/**
 * The steps at which a run's native config changes what training does (run.json's "model"), as
 * plot markers: the landmark prior and motion prior ending, the rigid start ending and its ramp
 * reaching full strength, pose refinement starting. Curves bend there; the markers say why.
 */
export function scheduleMarkers(model: Record<string, unknown>): PlotMarker[] {
  const n = (k: string) => (typeof model[k] === 'number' ? (model[k] as number) : 0);
  const out: PlotMarker[] = [];
  if (n('prior_steps') > 0) out.push({ x: n('prior_steps'), label: 'landmark prior ends' });
  if (n('w_landmark_motion') > 0 && n('landmark_motion_steps') > 0) out.push({ x: n('landmark_motion_steps'), label: 'motion prior ends' });
  if (n('deform_rigid_steps') > 0) out.push({ x: n('deform_rigid_steps'), label: 'deformation ramps in' });
  if (n('deform_ramp_steps') > 0)
    out.push({ x: n('deform_rigid_steps') + n('deform_ramp_steps'), label: 'deformation at full strength' });
  if (n('pose_frames') > 0) out.push({ x: n('pose_start'), label: 'pose refinement starts' });
  return out.sort((a, b) => a.x - b.x);
}

/** The training-curve plots of a log: losses (log scale), PSNR, SSIM and learning rate, where present. */
export function logPlots(log: readonly LogRecord[], markers?: readonly PlotMarker[]): string[] {
  const plots: string[] = [];
  const groups: Array<[string, (k: string) => boolean, string, boolean]> = [
    ['Losses', (k) => /loss/i.test(k) || /^losses\./.test(k), 'loss', true],
    ['PSNR', (k) => /psnr/i.test(k), 'dB', false],
    ['SSIM', (k) => /ssim/i.test(k), 'SSIM', false],
    ['Learning rate', (k) => /(^|\.)lr$/i.test(k), 'lr', true],
  ];
  for (const [title, pick, yLabel, logY] of groups) {
    const s = seriesOf(log, pick);
    if (s.length) plots.push(linePlot(s, { title, xLabel: 'step', yLabel, logY, markers }));
  }
  return plots;
}

const STYLE = `body{font-family:sans-serif;margin:24px;color:#222;max-width:1700px}
h1{font-size:22px}h2{font-size:17px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0}th,td{border:1px solid #ccc;padding:4px 10px;text-align:right}
th:first-child{text-align:left}caption{text-align:left;color:#555;padding:4px 0}
.plots{display:flex;flex-wrap:wrap;gap:12px}figure{margin:8px 0}figcaption{color:#555;font-size:13px}
img.frame{width:100%;max-width:1536px;image-rendering:auto}`;

/** Writes index.html (and the frame images) for a report; returns the HTML file's path. */
export function writeReport(input: ReportInput): string {
  mkdirSync(input.outDir, { recursive: true });
  const body: string[] = [`<h1>${escapeXml(input.title)}</h1>`];
  for (const n of input.notes ?? []) body.push(`<p>${escapeXml(n)}</p>`);
  if (input.metrics?.length) {
    body.push('<h2>Metrics</h2>');
    for (const t of input.metrics) body.push(tableHtml(t));
  }
  if (input.log?.length) {
    const plots = logPlots(input.log, input.markers);
    body.push('<h2>Training curves</h2>', `<div class="plots">${plots.join('\n')}</div>`);
  }
  if (input.frames?.length) {
    const dir = join(input.outDir, 'frames');
    mkdirSync(dir, { recursive: true });
    body.push('<h2>Held-out frames</h2>', '<p>Each row: real | ours | difference (×' + (input.diffGain ?? 4) + ').</p>');
    input.frames.forEach((f, k) => {
      const file = `${String(k).padStart(3, '0')}_${f.label.replace(/[^A-Za-z0-9_.-]+/g, '_')}.png`;
      writeFileSync(join(dir, file), encodePng(triptych(f.real, f.ours, input.diffGain), { level: 3 }));
      body.push(`<figure><img class="frame" src="frames/${file}" alt="${escapeXml(f.label)}"><figcaption>${escapeXml(f.label)}</figcaption></figure>`);
    });
  }
  if (input.links?.length) {
    body.push('<h2>Files</h2>', '<ul>');
    for (const l of input.links) {
      const rel = relative(input.outDir, l.path).split('\\').join('/');
      body.push(`<li><a href="${escapeXml(encodeURI(rel))}">${escapeXml(l.label)}</a></li>`);
    }
    body.push('</ul>');
  }
  const html = `<!doctype html>\n<html lang="en"><head><meta charset="utf-8"><title>${escapeXml(input.title)}</title>\n<style>${STYLE}</style></head>\n<body>\n${body.join('\n')}\n</body></html>\n`;
  const out = join(input.outDir, 'index.html');
  writeFileSync(out, html);
  return out;
}

/** Builds the report of a run directory (layout at the top of this file). */
export function reportRunDir(runDir: string, opts: { title?: string; maxFrames?: number } = {}): string {
  if (!existsSync(runDir)) throw new ReportError(`run directory not found: ${runDir}`, 'NOT_A_RUN');
  const logPath = join(runDir, 'log.jsonl');
  const evalPath = join(runDir, 'eval.json');
  const valDir = join(runDir, 'val');
  const input: ReportInput = { title: opts.title ?? `DynTet run ${basename(runDir)}`, outDir: join(runDir, 'report'), links: [] };
  if (existsSync(logPath)) input.log = readLog(logPath);
  const runPath = join(runDir, 'run.json');
  if (existsSync(runPath)) {
    try {
      const model = JSON.parse(readFileSync(runPath, 'utf8')).model;
      if (model && typeof model === 'object') input.markers = scheduleMarkers(model);
    } catch {
      // run.json unreadable: the plots go without markers (the log and frames are what matter)
    }
  }
  if (existsSync(evalPath)) {
    let e: { methods?: MethodResult[]; caption?: string; poseCoverage?: PoseCoverage };
    try {
      e = JSON.parse(readFileSync(evalPath, 'utf8'));
    } catch (err) {
      throw new ReportError(`${evalPath} is not JSON (${(err as Error).message}): run \`dyntet-train eval\` again`, 'BAD_INPUT');
    }
    if (e.methods?.length) input.metrics = [methodsTable(e.methods, e.caption)];
    const poseNote = e.poseCoverage?.frames ? describePoseCoverage(e.poseCoverage) : null;
    if (poseNote) input.notes = [...(input.notes ?? []), `Note: ${poseNote}.`];
  }
  if (existsSync(valDir)) {
    const names = readdirSync(valDir).filter((f) => f.endsWith('_real.png')).sort().slice(0, opts.maxFrames ?? 12);
    input.frames = names
      .filter((f) => existsSync(join(valDir, f.replace(/_real\.png$/, '_ours.png'))))
      .map((f) => ({
        label: f.replace(/_real\.png$/, ''),
        real: decodePng(readFileSync(join(valDir, f))),
        ours: decodePng(readFileSync(join(valDir, f.replace(/_real\.png$/, '_ours.png')))),
      }));
  }
  for (const d of [runDir, join(runDir, 'meshes')]) {
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d).sort())
      if (/\.(obj|ply|mp4|dyntet)$/i.test(f)) input.links!.push({ label: relative(runDir, join(d, f)), path: join(d, f) });
  }
  if (!input.log && !input.metrics && !input.frames?.length && !input.links!.length)
    throw new ReportError(`${runDir} holds nothing to report (no log.jsonl, eval.json, val/ frames, meshes or videos)`, 'NOT_A_RUN');
  return writeReport(input);
}
