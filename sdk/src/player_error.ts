/** Codes of the errors the player itself raises (asset decoding raises AssetError). */
export type PlayerErrorCode =
  | 'NO_WEBGPU' // navigator.gpu missing or no adapter
  | 'DEVICE_LIMIT' // the avatar needs more than this device offers
  | 'ASSET_LIMIT' // the avatar declares sizes beyond the player's bounds
  | 'BAD_FRAME' // drive() got NaN/Inf or wrongly sized arrays
  | 'NO_ASSET' // play/drive/render before load()
  | 'UNKNOWN_CLIP'
  | 'DISPOSED'
  | 'BAD_SOURCE'
  | 'ABORTED'
  | 'DEVICE_LOST';

/** A typed error: `code` says what went wrong, the message says what to do about it. */
export class PlayerError extends Error {
  readonly code: PlayerErrorCode;
  constructor(code: PlayerErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PlayerError';
    this.code = code;
  }
}
