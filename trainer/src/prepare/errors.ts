import { UsageError } from '../commands/command.js';

/** A prepare failure the user can act on: the message says what is wrong and what to do. */
export class PrepareError extends UsageError {
  override name = 'PrepareError';
  constructor(message: string, readonly code: PrepareErrorCode) {
    super(message);
  }
}

export type PrepareErrorCode =
  | 'FFMPEG_MISSING'
  | 'NOT_A_VIDEO'
  | 'TOO_SHORT'
  | 'TOO_FEW_FACES'
  | 'MODEL_MISSING'
  | 'BROWSER_MISSING'
  | 'BAD_OPTION'
  | 'OUT_DIR';
