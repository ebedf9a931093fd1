// Report images: contact sheets, difference images and side-by-side strips.
import { blit, convertChannels, createImage, resize, type Image } from '../image/index.js';
import { ReportError } from './errors.js';

/** |a - b| per channel times gain, clamped to 255 (gain 4 by default: small errors stay visible). */
export function diffImage(a: Image, b: Image, gain = 4): Image {
  if (a.width !== b.width || a.height !== b.height)
    throw new ReportError(`difference of images of different sizes (${a.width}x${a.height} vs ${b.width}x${b.height})`, 'BAD_INPUT');
  const x = convertChannels(a, 3), y = convertChannels(b, 3);
  const out = createImage(a.width, a.height, 3);
  for (let i = 0; i < out.data.length; i++) out.data[i] = Math.min(255, Math.round(Math.abs(x.data[i] - y.data[i]) * gain));
  return out;
}

export interface SheetOptions {
  /** Images per row (default: ceil(sqrt(n))). */
  columns?: number;
  /** Width of a cell in pixels; images are resized to it keeping their aspect (default: the first image's width). */
  cellWidth?: number;
  /** Pixels between cells (default 4). */
  gap?: number;
  /** RGB of the background (default dark gray). */
  background?: readonly [number, number, number];
}

/** Tiles images (any channel count; the sheet is RGB) row by row into one image. */
export function contactSheet(images: readonly Image[], opts: SheetOptions = {}): Image {
  if (!images.length) throw new ReportError('a contact sheet needs at least one image', 'BAD_INPUT');
  const cols = Math.max(1, Math.min(images.length, opts.columns ?? Math.ceil(Math.sqrt(images.length))));
  const rows = Math.ceil(images.length / cols);
  const gap = opts.gap ?? 4;
  const cw = Math.max(1, Math.round(opts.cellWidth ?? images[0].width));
  const cells = images.map((im) => {
    const h = Math.max(1, Math.round((im.height * cw) / im.width));
    const rgb = convertChannels(im, 3);
    return im.width === cw && im.height === h ? rgb : resize(rgb, cw, h);
  });
  const ch = Math.max(...cells.map((c) => c.height));
  const sheet = createImage(cols * cw + (cols + 1) * gap, rows * ch + (rows + 1) * gap, 3);
  const bg = opts.background ?? [32, 32, 32];
  for (let i = 0; i < sheet.data.length; i += 3) sheet.data.set(bg, i);
  cells.forEach((c, k) => blit(sheet, c, gap + (k % cols) * (cw + gap), gap + Math.floor(k / cols) * (ch + gap)));
  return sheet;
}

/** real | ours | difference, side by side with no gap (the video and report layout). */
export function triptych(real: Image, ours: Image, gain = 4): Image {
  if (real.width !== ours.width || real.height !== ours.height)
    throw new ReportError(`real and rendered frames differ in size (${real.width}x${real.height} vs ${ours.width}x${ours.height})`, 'BAD_INPUT');
  const w = real.width, h = real.height;
  const out = createImage(3 * w, h, 3);
  blit(out, convertChannels(real, 3), 0, 0);
  blit(out, convertChannels(ours, 3), w, 0);
  blit(out, diffImage(real, ours, gain), 2 * w, 0);
  return out;
}
