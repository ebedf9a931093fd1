// Small raster helpers for masks and visual reports: polygon fill, lines, dots, boxes, resampling.
import { createImage, PngError, type Channels, type Image } from './png.js';

export type Color = readonly number[];
export type Point = readonly [number, number];

function put(img: Image, x: number, y: number, color: Color, alpha: number): void {
  if (x < 0 || y < 0 || x >= img.width || y >= img.height) return;
  const o = (y * img.width + x) * img.channels;
  for (let c = 0; c < img.channels; c++) {
    const v = color[Math.min(c, color.length - 1)];
    img.data[o + c] = alpha >= 1 ? v : Math.round(img.data[o + c] * (1 - alpha) + v * alpha);
  }
}

/**
 * Fills a polygon (even-odd rule) sampling pixel centres, so a pixel is set exactly when its
 * centre lies inside: the rule masks and their tests share.
 */
export function fillPolygon(img: Image, pts: readonly Point[], color: Color, alpha = 1): void {
  if (pts.length < 3) return;
  let y0 = Infinity, y1 = -Infinity;
  for (const p of pts) {
    y0 = Math.min(y0, p[1]);
    y1 = Math.max(y1, p[1]);
  }
  const ys = Math.max(0, Math.ceil(y0 - 0.5)), ye = Math.min(img.height - 1, Math.floor(y1 - 0.5));
  const xs: number[] = [];
  for (let y = ys; y <= ye; y++) {
    const cy = y + 0.5;
    xs.length = 0;
    for (let i = 0, j = pts.length - 1; i < pts.length; j = i++) {
      const [xi, yi] = pts[i], [xj, yj] = pts[j];
      if ((yi <= cy) !== (yj <= cy)) xs.push(xi + ((cy - yi) / (yj - yi)) * (xj - xi));
    }
    xs.sort((a, b) => a - b);
    for (let k = 0; k + 1 < xs.length; k += 2) {
      const xa = Math.max(0, Math.ceil(xs[k] - 0.5)), xb = Math.min(img.width - 1, Math.floor(xs[k + 1] - 0.5));
      for (let x = xa; x <= xb; x++) put(img, x, y, color, alpha);
    }
  }
}

/** Fills an ellipse given its centre, semi-axes and rotation (radians). */
export function fillEllipse(img: Image, cx: number, cy: number, rx: number, ry: number, angle: number, color: Color, alpha = 1): void {
  const n = 64;
  const pts: Point[] = [];
  const ca = Math.cos(angle), sa = Math.sin(angle);
  for (let i = 0; i < n; i++) {
    const t = (2 * Math.PI * i) / n;
    const x = rx * Math.cos(t), y = ry * Math.sin(t);
    pts.push([cx + ca * x - sa * y, cy + sa * x + ca * y]);
  }
  fillPolygon(img, pts, color, alpha);
}

/** A 1-pixel line (DDA). */
export function drawLine(img: Image, a: Point, b: Point, color: Color, alpha = 1): void {
  const n = Math.max(1, Math.ceil(Math.max(Math.abs(b[0] - a[0]), Math.abs(b[1] - a[1]))));
  for (let i = 0; i <= n; i++) {
    const t = i / n;
    put(img, Math.floor(a[0] + (b[0] - a[0]) * t), Math.floor(a[1] + (b[1] - a[1]) * t), color, alpha);
  }
}

/** A filled disc of radius r around (x, y). */
export function drawDot(img: Image, x: number, y: number, r: number, color: Color, alpha = 1): void {
  for (let dy = Math.floor(-r); dy <= Math.ceil(r); dy++)
    for (let dx = Math.floor(-r); dx <= Math.ceil(r); dx++)
      if (dx * dx + dy * dy <= r * r) put(img, Math.floor(x) + dx, Math.floor(y) + dy, color, alpha);
}

/** Outline of an axis-aligned box [x0, y0, x1, y1]. */
export function drawBox(img: Image, box: readonly number[], color: Color, alpha = 1): void {
  const [x0, y0, x1, y1] = box;
  drawLine(img, [x0, y0], [x1, y0], color, alpha);
  drawLine(img, [x1, y0], [x1, y1], color, alpha);
  drawLine(img, [x1, y1], [x0, y1], color, alpha);
  drawLine(img, [x0, y1], [x0, y0], color, alpha);
}

/** Tints the pixels where mask > 127 with color at the given opacity. */
export function tintMask(img: Image, mask: Image, color: Color, alpha: number): void {
  if (mask.width !== img.width || mask.height !== img.height || mask.channels !== 1)
    throw new PngError(`mask must be a ${img.width}x${img.height} gray image, got ${mask.width}x${mask.height}x${mask.channels}`);
  for (let i = 0; i < mask.data.length; i++) if (mask.data[i] > 127) put(img, i % img.width, Math.floor(i / img.width), color, alpha);
}

/** Converts between gray, RGB and RGBA (gray takes the mean; alpha becomes opaque). */
export function convertChannels(img: Image, channels: Channels): Image {
  if (img.channels === channels) return img;
  const out = createImage(img.width, img.height, channels);
  const n = img.width * img.height;
  for (let i = 0; i < n; i++) {
    const s = i * img.channels, d = i * channels;
    const r = img.data[s], g = img.channels >= 3 ? img.data[s + 1] : r, b = img.channels >= 3 ? img.data[s + 2] : r;
    if (channels === 1) out.data[d] = Math.round((r + g + b) / 3);
    else {
      out.data[d] = r;
      out.data[d + 1] = g;
      out.data[d + 2] = b;
      if (channels === 4) out.data[d + 3] = img.channels === 4 ? img.data[s + 3] : 255;
    }
  }
  return out;
}

/** Resizes by area averaging (shrinking) or nearest sampling (enlarging); deterministic. */
export function resize(img: Image, width: number, height: number): Image {
  const out = createImage(width, height, img.channels);
  const sx = img.width / width, sy = img.height / height;
  const ch = img.channels;
  const acc = new Float64Array(ch);
  for (let y = 0; y < height; y++) {
    const ya = Math.floor(y * sy), yb = Math.max(ya + 1, Math.floor((y + 1) * sy));
    for (let x = 0; x < width; x++) {
      const xa = Math.floor(x * sx), xb = Math.max(xa + 1, Math.floor((x + 1) * sx));
      acc.fill(0);
      for (let v = ya; v < yb; v++)
        for (let u = xa; u < xb; u++) {
          const o = (v * img.width + u) * ch;
          for (let c = 0; c < ch; c++) acc[c] += img.data[o + c];
        }
      const n = (yb - ya) * (xb - xa);
      const o = (y * width + x) * ch;
      for (let c = 0; c < ch; c++) out.data[o + c] = Math.round(acc[c] / n);
    }
  }
  return out;
}

/** Copies src into dst with its top-left corner at (x, y); channels must match. */
export function blit(dst: Image, src: Image, x: number, y: number): void {
  if (dst.channels !== src.channels) throw new PngError(`blit needs equal channel counts, got ${src.channels} into ${dst.channels}`);
  for (let v = 0; v < src.height; v++) {
    const dy = y + v;
    if (dy < 0 || dy >= dst.height) continue;
    for (let u = 0; u < src.width; u++) {
      const dx = x + u;
      if (dx < 0 || dx >= dst.width) continue;
      const s = (v * src.width + u) * src.channels, d = (dy * dst.width + dx) * dst.channels;
      for (let c = 0; c < src.channels; c++) dst.data[d + c] = src.data[s + c];
    }
  }
}
