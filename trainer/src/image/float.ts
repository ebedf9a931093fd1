// Float images in [0, 1] (what the native trainer and the renderers take and give) <-> 8-bit images.
import { createImage, type Image } from './png.js';

/** Interleaved floats in [0, 1], `channels` per pixel, to an 8-bit image (clamped, rounded). */
export function floatToImage(data: Float32Array, width: number, height: number, channels: 1 | 3 | 4 = 3): Image {
  const img = createImage(width, height, channels);
  for (let i = 0; i < width * height * channels; i++) img.data[i] = Math.max(0, Math.min(255, Math.round(data[i] * 255)));
  return img;
}

/** An 8-bit image as `channels` floats per pixel in [0, 1] (extra channels dropped, gray repeated). */
export function imageToFloat(img: Image, channels: 1 | 3 = 3): Float32Array {
  const n = img.width * img.height;
  const out = new Float32Array(n * channels);
  for (let i = 0; i < n; i++) for (let c = 0; c < channels; c++) out[i * channels + c] = img.data[i * img.channels + Math.min(c, img.channels - 1)] / 255;
  return out;
}

/** An RGBA8 pixel array (a renderer's output) viewed as an Image, without copying. */
export function rgbaImage(data: Uint8Array | Uint8ClampedArray, width: number, height: number): Image {
  return { width, height, channels: 4, data: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
}
