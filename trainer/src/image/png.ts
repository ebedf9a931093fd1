// PNG encode/decode for 8-bit gray, RGB and RGBA images, on node:zlib only.
import { deflateSync, inflateSync } from 'node:zlib';

export type Channels = 1 | 3 | 4;

/** A raster image: row-major, interleaved 8-bit channels, no row padding. */
export interface Image {
  width: number;
  height: number;
  channels: Channels;
  data: Uint8Array;
}

/** A PNG that cannot be read, or an image that cannot be written: the message says which and why. */
export class PngError extends Error {
  override name = 'PngError';
}

const SIGNATURE = Uint8Array.of(0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a);
const COLOR_TYPE: Record<Channels, number> = { 1: 0, 3: 2, 4: 6 };

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(bytes: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return ~c >>> 0;
}

/** Allocates a zeroed image. */
export function createImage(width: number, height: number, channels: Channels): Image {
  checkSize(width, height, channels);
  return { width, height, channels, data: new Uint8Array(width * height * channels) };
}

function checkSize(width: number, height: number, channels: number): void {
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0)
    throw new PngError(`image size must be positive integers, got ${width}x${height}`);
  if (channels !== 1 && channels !== 3 && channels !== 4) throw new PngError(`channels must be 1 (gray), 3 (RGB) or 4 (RGBA), got ${channels}`);
}

export interface EncodeOptions {
  /** zlib level 0-9; 6 by default. Lower is faster for large frames. */
  level?: number;
}

/** Encodes an 8-bit gray/RGB/RGBA image as PNG. Rows use the Paeth-free "up" filter: fast and deterministic. */
export function encodePng(img: Image, opts: EncodeOptions = {}): Uint8Array {
  const { width, height, channels, data } = img;
  checkSize(width, height, channels);
  const stride = width * channels;
  if (data.length !== stride * height)
    throw new PngError(`image data has ${data.length} bytes, expected ${stride * height} for ${width}x${height}x${channels}`);
  // Filter 2 (up) compresses natural images and masks well and costs one subtraction per byte.
  const raw = new Uint8Array((stride + 1) * height);
  for (let y = 0; y < height; y++) {
    const o = y * (stride + 1);
    const row = y * stride;
    if (y === 0) {
      raw[o] = 0;
      raw.set(data.subarray(row, row + stride), o + 1);
    } else {
      raw[o] = 2;
      const prev = row - stride;
      for (let x = 0; x < stride; x++) raw[o + 1 + x] = (data[row + x] - data[prev + x]) & 0xff;
    }
  }
  const idat = deflateSync(raw, { level: opts.level ?? 6 });
  const ihdr = new Uint8Array(13);
  const dv = new DataView(ihdr.buffer);
  dv.setUint32(0, width);
  dv.setUint32(4, height);
  ihdr[8] = 8;
  ihdr[9] = COLOR_TYPE[channels];
  const parts = [SIGNATURE, chunk('IHDR', ihdr), chunk('IDAT', idat), chunk('IEND', new Uint8Array(0))];
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  dv.setUint32(8 + body.length, crc32(out.subarray(4, 8 + body.length)));
  return out;
}

export interface DecodeOptions {
  /** Refuse images with more pixels than this (default 64 Mpx) instead of allocating them. */
  maxPixels?: number;
}

/**
 * Decodes a non-interlaced 8-bit PNG: gray, gray+alpha (alpha dropped), RGB, RGBA or palette
 * (expanded to RGB/RGBA). Anything else is a PngError that names what is unsupported.
 */
export function decodePng(bytes: Uint8Array, opts: DecodeOptions = {}): Image {
  if (bytes.length < 8 || SIGNATURE.some((b, i) => bytes[i] !== b)) throw new PngError('not a PNG file (bad signature)');
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  let pos = 8;
  let width = 0, height = 0, bitDepth = 0, colorType = -1, interlace = 0;
  let palette: Uint8Array | undefined;
  let trns: Uint8Array | undefined;
  const idat: Uint8Array[] = [];
  let sawEnd = false;
  while (pos + 8 <= bytes.length) {
    const len = dv.getUint32(pos);
    const type = String.fromCharCode(bytes[pos + 4], bytes[pos + 5], bytes[pos + 6], bytes[pos + 7]);
    if (pos + 12 + len > bytes.length) throw new PngError(`truncated PNG: chunk ${type} runs past the end of the file`);
    const body = bytes.subarray(pos + 8, pos + 8 + len);
    if (crc32(bytes.subarray(pos + 4, pos + 8 + len)) !== dv.getUint32(pos + 8 + len)) throw new PngError(`corrupt PNG: CRC mismatch in chunk ${type}`);
    pos += 12 + len;
    if (type === 'IHDR') {
      if (len !== 13) throw new PngError('corrupt PNG: IHDR has the wrong length');
      const h = new DataView(body.buffer, body.byteOffset, 13);
      width = h.getUint32(0);
      height = h.getUint32(4);
      bitDepth = body[8];
      colorType = body[9];
      interlace = body[12];
    } else if (type === 'PLTE') palette = body;
    else if (type === 'tRNS') trns = body;
    else if (type === 'IDAT') idat.push(body);
    else if (type === 'IEND') {
      sawEnd = true;
      break;
    }
  }
  if (colorType < 0) throw new PngError('corrupt PNG: no IHDR chunk');
  if (!sawEnd || idat.length === 0) throw new PngError('truncated PNG: missing image data or IEND');
  if (bitDepth !== 8) throw new PngError(`unsupported PNG bit depth ${bitDepth}: only 8-bit images are supported`);
  if (interlace !== 0) throw new PngError('unsupported interlaced PNG: re-save it without interlacing');
  const srcCh = ({ 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 } as Record<number, number>)[colorType];
  if (!srcCh) throw new PngError(`unsupported PNG color type ${colorType}`);
  if (width === 0 || height === 0) throw new PngError('corrupt PNG: zero width or height');
  const maxPixels = opts.maxPixels ?? 64 * 1024 * 1024;
  if (width * height > maxPixels) throw new PngError(`PNG is ${width}x${height}, more than the ${maxPixels}-pixel limit`);
  const stride = width * srcCh;
  let raw: Uint8Array;
  try {
    raw = inflateSync(idat.length === 1 ? idat[0] : Buffer.concat(idat), { maxOutputLength: (stride + 1) * height + 1 });
  } catch (e) {
    throw new PngError(`corrupt PNG: image data does not inflate (${(e as Error).message})`);
  }
  if (raw.length < (stride + 1) * height) throw new PngError('truncated PNG: image data is shorter than the image');
  const px = new Uint8Array(stride * height);
  unfilter(raw, px, stride, height, srcCh);

  if (colorType === 0 || colorType === 2 || colorType === 6) return { width, height, channels: srcCh as Channels, data: px };
  if (colorType === 4) {
    const out = new Uint8Array(width * height);
    for (let i = 0; i < out.length; i++) out[i] = px[2 * i];
    return { width, height, channels: 1, data: out };
  }
  if (!palette) throw new PngError('corrupt PNG: palette image without PLTE chunk');
  const ch: Channels = trns ? 4 : 3;
  const out = new Uint8Array(width * height * ch);
  for (let i = 0; i < width * height; i++) {
    const k = px[i];
    if (3 * k + 2 >= palette.length) throw new PngError('corrupt PNG: palette index out of range');
    out[i * ch] = palette[3 * k];
    out[i * ch + 1] = palette[3 * k + 1];
    out[i * ch + 2] = palette[3 * k + 2];
    if (ch === 4) out[i * ch + 3] = trns && k < trns.length ? trns[k] : 255;
  }
  return { width, height, channels: ch, data: out };
}

function unfilter(raw: Uint8Array, px: Uint8Array, stride: number, height: number, bpp: number): void {
  for (let y = 0; y < height; y++) {
    const f = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    const up = dst - stride;
    for (let x = 0; x < stride; x++) {
      const r = raw[src + x];
      const a = x >= bpp ? px[dst + x - bpp] : 0;
      const b = y > 0 ? px[up + x] : 0;
      const c = x >= bpp && y > 0 ? px[up + x - bpp] : 0;
      let v: number;
      switch (f) {
        case 0: v = r; break;
        case 1: v = r + a; break;
        case 2: v = r + b; break;
        case 3: v = r + ((a + b) >> 1); break;
        case 4: {
          const p = a + b - c;
          const pa = Math.abs(p - a), pb = Math.abs(p - b), pc = Math.abs(p - c);
          v = r + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
          break;
        }
        default: throw new PngError(`corrupt PNG: unknown row filter ${f}`);
      }
      px[dst + x] = v & 0xff;
    }
  }
}
