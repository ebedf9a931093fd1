import { UsageError } from '../commands/command.js';

/** A report-writing failure the user can act on: the message says what is wrong and what to do. */
export class ReportError extends UsageError {
  override name = 'ReportError';
  constructor(message: string, readonly code: ReportErrorCode) {
    super(message);
  }
}

export type ReportErrorCode = 'FFMPEG_MISSING' | 'FFMPEG_FAILED' | 'BAD_INPUT' | 'BAD_LOG' | 'NOT_A_RUN';
