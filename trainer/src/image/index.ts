// Image I/O and drawing for the trainer: PNG of 8-bit gray/RGB/RGBA plus small raster helpers.
export { createImage, crc32, decodePng, encodePng, PngError } from './png.js';
export type { Channels, DecodeOptions, EncodeOptions, Image } from './png.js';
export { floatToImage, imageToFloat, rgbaImage } from './float.js';
export { blit, convertChannels, drawBox, drawDot, drawLine, fillEllipse, fillPolygon, resize, tintMask } from './draw.js';
export type { Color, Point } from './draw.js';
