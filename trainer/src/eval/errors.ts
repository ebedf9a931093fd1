import { UsageError } from '../commands/command.js';

/** An evaluation failure the user can act on: the message says what is wrong and what to do. */
export class EvalError extends UsageError {
  override name = 'EvalError';
  constructor(message: string, readonly code: EvalErrorCode) {
    super(message);
  }
}

export type EvalErrorCode =
  | 'SIZE_MISMATCH'
  | 'BAD_REGION'
  | 'BAD_INPUT'
  | 'DATASET'
  | 'NO_HELD_OUT'
  | 'TRACKER';
