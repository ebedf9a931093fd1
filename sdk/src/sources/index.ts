/** `@dyntet/player/sources`: coefficient sources that need no extra dependency. */
export { SourceError, poseFromEuler, eulerFromPose, neutralFrame, pipe } from './source.js';
export type { CoefficientSource, SourceErrorCode } from './source.js';
export { parseJsonTrack, parseCsvTrack, trackSource } from './recorded.js';
export type { CsvOptions } from './recorded.js';
