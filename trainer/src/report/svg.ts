// Line plots as standalone inline SVG (no scripts, no external fonts): training curves in reports.

export interface Series {
  name: string;
  /** [x, y] points; non-finite y values (and y <= 0 on a log axis) are skipped. */
  points: ReadonlyArray<readonly [number, number]>;
  color?: string;
}

/** A dashed vertical line at x, labelled (a schedule event: a prior ends, ...). */
export interface PlotMarker {
  x: number;
  label: string;
}

export interface PlotOptions {
  title?: string;
  xLabel?: string;
  yLabel?: string;
  logY?: boolean;
  width?: number;
  height?: number;
  markers?: readonly PlotMarker[];
}

const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#bcbd22', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

/** "Nice" tick positions (1, 2, 5 x 10^k steps) covering [lo, hi]. */
export function niceTicks(lo: number, hi: number, target = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  // Integer multiples of the step, rounded so that 3 x 0.2 prints as 0.6.
  for (let k = Math.ceil(lo / step - 1e-9); k * step <= hi + step * 1e-9; k++) out.push(k === 0 ? 0 : Number((k * step).toPrecision(12)));
  return out;
}

function fmtTick(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e5 || a < 1e-3) return v.toExponential(0);
  return String(Number(v.toPrecision(4)));
}

/** An SVG line plot of one or more series with axes, ticks and a legend. */
export function linePlot(series: readonly Series[], opts: PlotOptions = {}): string {
  const W = opts.width ?? 560, H = opts.height ?? 300;
  const m = { l: 64, r: 16, t: opts.title ? 28 : 12, b: 44 };
  const pw = W - m.l - m.r, ph = H - m.t - m.b;
  const ok = (y: number) => Number.isFinite(y) && (!opts.logY || y > 0);
  const pts = series.map((s) => s.points.filter(([x, y]) => Number.isFinite(x) && ok(y)));
  const all = pts.flat();
  const parts: string[] = [];
  parts.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`);
  parts.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#fff"/>`);
  if (opts.title) parts.push(`<text x="${W / 2}" y="18" text-anchor="middle" font-size="13" font-weight="bold">${escapeXml(opts.title)}</text>`);
  if (!all.length) {
    parts.push(`<text x="${W / 2}" y="${H / 2}" text-anchor="middle" fill="#888">no data</text></svg>`);
    return parts.join('');
  }
  let x0 = Math.min(...all.map((p) => p[0])), x1 = Math.max(...all.map((p) => p[0]));
  const ty = (y: number) => (opts.logY ? Math.log10(y) : y);
  let y0 = Math.min(...all.map((p) => ty(p[1]))), y1 = Math.max(...all.map((p) => ty(p[1])));
  if (x1 === x0) { x0 -= 1; x1 += 1; }
  if (y1 === y0) { y0 -= opts.logY ? 0.5 : Math.abs(y0) * 0.1 || 1; y1 += opts.logY ? 0.5 : Math.abs(y1) * 0.1 || 1; }
  const pad = (y1 - y0) * 0.05;
  y0 -= pad; y1 += pad;
  const sx = (x: number) => m.l + ((x - x0) / (x1 - x0)) * pw;
  const sy = (y: number) => m.t + ph - ((ty(y) - y0) / (y1 - y0)) * ph;
  const r = (v: number) => Math.round(v * 10) / 10;
  // Grid and ticks.
  for (const t of niceTicks(x0, x1)) {
    parts.push(`<line x1="${r(sx(t))}" y1="${m.t}" x2="${r(sx(t))}" y2="${m.t + ph}" stroke="#eee"/>`);
    parts.push(`<text x="${r(sx(t))}" y="${m.t + ph + 14}" text-anchor="middle">${fmtTick(t)}</text>`);
  }
  const yTicks = opts.logY
    ? niceTicks(Math.floor(y0), Math.ceil(y1), 6).filter((e) => Number.isInteger(e) && e >= y0 && e <= y1).map((e) => 10 ** e)
    : niceTicks(y0, y1);
  for (const t of yTicks) {
    const y = r(sy(t));
    parts.push(`<line x1="${m.l}" y1="${y}" x2="${m.l + pw}" y2="${y}" stroke="#eee"/>`);
    parts.push(`<text x="${m.l - 6}" y="${y + 4}" text-anchor="end">${fmtTick(t)}</text>`);
  }
  parts.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#444"/>`);
  if (opts.xLabel) parts.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">${escapeXml(opts.xLabel)}</text>`);
  if (opts.yLabel)
    parts.push(`<text transform="translate(14 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${escapeXml(opts.yLabel + (opts.logY ? ' (log)' : ''))}</text>`);
  // Markers inside the x range; each label sits one line above the previous one's, so neighbours do not collide.
  (opts.markers ?? []).filter((mk) => Number.isFinite(mk.x) && mk.x >= x0 && mk.x <= x1).forEach((mk, k) => {
    const x = r(sx(mk.x));
    parts.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + ph}" stroke="#999" stroke-dasharray="4 3"><title>${escapeXml(mk.label)}</title></line>`);
    parts.push(`<text x="${x + 3}" y="${m.t + ph - 6 - 13 * k}" fill="#666">${escapeXml(mk.label)}</text>`);
  });
  // Lines, then the legend on top.
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const p = pts[k];
    if (!p.length) return;
    const d = p.map(([x, y], i) => `${i ? 'L' : 'M'}${r(sx(x))} ${r(sy(y))}`).join('');
    parts.push(`<path d="${d}" fill="none" stroke="${color}" stroke-width="1.5"><title>${escapeXml(s.name)}</title></path>`);
    if (p.length === 1) parts.push(`<circle cx="${r(sx(p[0][0]))}" cy="${r(sy(p[0][1]))}" r="2.5" fill="${color}"/>`);
  });
  series.forEach((s, k) => {
    const color = s.color ?? PALETTE[k % PALETTE.length];
    const y = m.t + 12 + 14 * k;
    parts.push(`<line x1="${m.l + pw - 120}" y1="${y - 4}" x2="${m.l + pw - 104}" y2="${y - 4}" stroke="${color}" stroke-width="2"/>`);
    parts.push(`<text x="${m.l + pw - 100}" y="${y}">${escapeXml(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('');
}
