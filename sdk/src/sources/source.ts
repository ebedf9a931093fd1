/**
 * A coefficient source: anything that yields coefficient frames over time (a recorded track, a
 * webcam tracker, an ONNX model). Sources know nothing about the player; `pipe` connects one to
 * anything with a `drive(frame)` method, so each source stays a small separate entry point.
 */
import { NUM_BLENDSHAPES, POSE_SIZE, type CoefficientFrame } from '../coefficients.js';

export interface CoefficientSource {
  /** Starts delivering frames to `onFrame`; resolves once the source is running. */
  start(onFrame: (frame: CoefficientFrame, timeSeconds: number) => void): Promise<void>;
  /** Stops delivery and releases what the source holds (camera, timers, sessions). */
  stop(): void;
}

/**
 * What went wrong in a coefficient source:
 * - BAD_TRACK: a recorded track (JSON, CSV) is malformed;
 * - NO_CAMERA, CAMERA_DENIED, TRACKER_FAILED: the webcam source;
 * - BAD_INPUT: the caller's input (features not a whole number of rows, non-finite features,
 *   a video the browser cannot decode);
 * - MODEL_LOAD_FAILED: the ONNX model (or onnxruntime-web) did not load;
 * - MODEL_SHAPE: the model's inputs or outputs do not fit the contract (count, type, feature
 *   size, 52 blendshapes, a pose of 16 or 3 values);
 * - INFERENCE_FAILED: the model loaded and fits, but failed while running;
 * - NON_FINITE_OUTPUT: the model gave NaN or Infinity (nothing of that run is driven).
 */
export type SourceErrorCode =
  | 'BAD_TRACK' | 'NO_CAMERA' | 'CAMERA_DENIED' | 'TRACKER_FAILED' | 'BAD_INPUT'
  | 'MODEL_LOAD_FAILED' | 'MODEL_SHAPE' | 'INFERENCE_FAILED' | 'NON_FINITE_OUTPUT';

/** A typed error of the coefficient sources: `code` says what went wrong, the message what to do. */
export class SourceError extends Error {
  constructor(
    readonly code: SourceErrorCode,
    message: string,
  ) {
    super(message);
    this.name = 'SourceError';
  }
}

/** Column-major 4x4 of head yaw/pitch/roll (radians, Y-X-Z order) at `distanceCm` in front of the camera. */
export function poseFromEuler(yaw: number, pitch: number, roll: number, distanceCm = 40): Float32Array {
  const cy = Math.cos(yaw), sy = Math.sin(yaw);
  const cp = Math.cos(pitch), sp = Math.sin(pitch);
  const cr = Math.cos(roll), sr = Math.sin(roll);
  // R = Ry(yaw) * Rx(pitch) * Rz(roll), written row by row then stored column-major.
  const r00 = cy * cr + sy * sp * sr, r01 = -cy * sr + sy * sp * cr, r02 = sy * cp;
  const r10 = cp * sr, r11 = cp * cr, r12 = -sp;
  const r20 = -sy * cr + cy * sp * sr, r21 = sy * sr + cy * sp * cr, r22 = cy * cp;
  return new Float32Array([r00, r10, r20, 0, r01, r11, r21, 0, r02, r12, r22, 0, 0, 0, -distanceCm, 1]);
}

/**
 * The head's yaw, pitch and roll (radians) of a column-major 4x4 pose: the inverse of
 * `poseFromEuler` (Y-X-Z order), with any uniform scale divided out. Pitch is in [-pi/2, pi/2].
 */
export function eulerFromPose(pose: ArrayLike<number>): { yaw: number; pitch: number; roll: number } {
  if (pose.length < 12) throw new SourceError('BAD_TRACK', `a pose needs 16 values (column-major 4x4), got ${pose.length}`);
  // Element (row i, column j) sits at j * 4 + i.
  const s = Math.hypot(pose[0], pose[1], pose[2]) || 1;
  const r = (i: number, j: number) => pose[j * 4 + i] / s;
  return {
    yaw: Math.atan2(r(0, 2), r(2, 2)),
    pitch: Math.asin(Math.max(-1, Math.min(1, -r(1, 2)))),
    roll: Math.atan2(r(1, 0), r(1, 1)),
  };
}

/** A neutral frame: all blendshapes 0, head facing the camera. */
export function neutralFrame(distanceCm = 40): CoefficientFrame {
  return { blendshapes: new Float32Array(NUM_BLENDSHAPES), pose: poseFromEuler(0, 0, 0, distanceCm) };
}

/** Sends every frame of `source` to `target.drive`; returns a function that stops it. */
export async function pipe(source: CoefficientSource, target: { drive(frame: CoefficientFrame): void }): Promise<() => void> {
  await source.start((frame) => target.drive(frame));
  return () => source.stop();
}

export function checkFrame(frame: CoefficientFrame, where: string): void {
  if (frame.blendshapes.length !== NUM_BLENDSHAPES || frame.pose.length !== POSE_SIZE)
    throw new SourceError('BAD_TRACK', `${where}: a frame needs ${NUM_BLENDSHAPES} blendshapes and a ${POSE_SIZE}-value pose`);
}
