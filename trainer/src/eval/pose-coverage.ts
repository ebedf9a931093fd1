// Do the held-out frames show head poses the training frames cover? A model of the head can only
// interpolate the views it was trained on; a held-out frame turned further than any training frame
// asks it to extrapolate (a side of the face and hair it never saw), and scores lower for that
// reason alone. Eval reports it beside the metrics so a low score can be read correctly.
import { eulerFromPose } from '@dyntet/player/sources';

export type PoseAxis = 'yaw' | 'pitch' | 'roll';
const AXES: readonly PoseAxis[] = ['yaw', 'pitch', 'roll'];

export interface FramePose {
  index: number;
  /** Head angles in degrees (the player's yaw / pitch / roll convention, `poseFromEuler`). */
  yaw: number;
  pitch: number;
  roll: number;
  /** Degrees beyond the training frames' range on the worst axis (0 inside it), and that axis. */
  beyond: number;
  axis: PoseAxis | null;
}

export interface PoseCoverage {
  /** [min, max] degrees over the training frames, per axis. */
  trainRange: Record<PoseAxis, [number, number]>;
  frames: FramePose[];
  /** Frames beyond the range by more than thresholdDeg. */
  beyondCount: number;
  thresholdDeg: number;
  maxBeyond: number;
  maxAxis: PoseAxis | null;
}

const DEG = 180 / Math.PI;

function angles(pose: ArrayLike<number>): Record<PoseAxis, number> {
  const e = eulerFromPose(pose);
  return { yaw: e.yaw * DEG, pitch: e.pitch * DEG, roll: e.roll * DEG };
}

/** Head angles of the held-out frames against the range of the training frames' (poses column-major 4x4). */
export function poseCoverage(train: readonly ArrayLike<number>[], heldOut: readonly { index: number; pose: ArrayLike<number> }[], thresholdDeg = 1): PoseCoverage {
  if (!train.length) throw new RangeError('pose coverage needs at least one training pose');
  const range = {} as Record<PoseAxis, [number, number]>;
  for (const a of AXES) range[a] = [Infinity, -Infinity];
  for (const p of train) {
    const g = angles(p);
    for (const a of AXES) range[a] = [Math.min(range[a][0], g[a]), Math.max(range[a][1], g[a])];
  }
  const frames = heldOut.map(({ index, pose }): FramePose => {
    const g = angles(pose);
    let beyond = 0, axis: PoseAxis | null = null;
    for (const a of AXES) {
      const d = Math.max(0, g[a] - range[a][1], range[a][0] - g[a]);
      if (d > beyond) { beyond = d; axis = a; }
    }
    return { index, ...g, beyond, axis };
  });
  let maxBeyond = 0, maxAxis: PoseAxis | null = null;
  for (const f of frames) if (f.beyond > maxBeyond) { maxBeyond = f.beyond; maxAxis = f.axis; }
  return { trainRange: range, frames, beyondCount: frames.filter((f) => f.beyond > thresholdDeg).length, thresholdDeg, maxBeyond, maxAxis };
}

/** One line for the user when held-out frames leave the training range; null when none does. */
export function describePoseCoverage(c: PoseCoverage): string | null {
  if (!c.beyondCount) return null;
  const [lo, hi] = c.trainRange[c.maxAxis!];
  return `${c.beyondCount} of ${c.frames.length} held-out frames turn the head beyond the training frames' range ` +
    `(up to ${c.maxBeyond.toFixed(1)} degrees in ${c.maxAxis}; training ${lo.toFixed(1)} to ${hi.toFixed(1)}): ` +
    'the model extrapolates there and scores lower for it; to measure the model rather than the split, ' +
    'use a clip whose training part shows those poses';
}
