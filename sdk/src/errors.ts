/** Why an asset was refused: the names of native/core/asset.h's AssetError. */
export type AssetErrorCode =
  | 'TRUNCATED'
  | 'BAD_MAGIC'
  | 'UNSUPPORTED_VERSION'
  | 'TABLE_OUT_OF_RANGE'
  | 'CHUNK_OUT_OF_RANGE'
  | 'CHUNK_OVERLAP'
  | 'CHECKSUM_MISMATCH'
  | 'SIZE_LIMIT'
  | 'NON_FINITE'
  | 'BAD_METADATA'
  | 'MISSING_CHUNK'
  | 'BAD_TENSOR'
  | 'BAD_ARGUMENT';

/** A .dyntet file that cannot be used; `message` says what is wrong and what to do. */
export class AssetError extends Error {
  override name = 'AssetError';
  constructor(
    readonly code: AssetErrorCode,
    message: string,
  ) {
    super(message);
  }
}
