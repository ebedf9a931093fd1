/**
 * The coefficient convention, end to end: MediaPipe FaceLandmarker's 52 blendshape scores in the
 * tracker's own order (index 0 is `_neutral`; the other 51 carry ARKit names) plus the head pose,
 * the tracker's 4x4 facial transformation matrix (column-major, centimetres, face space to camera
 * space, camera looking down -z). The trainer, the asset and the player all use this one list.
 */
export const BLENDSHAPE_NAMES = [
  '_neutral', 'browDownLeft', 'browDownRight', 'browInnerUp', 'browOuterUpLeft', 'browOuterUpRight',
  'cheekPuff', 'cheekSquintLeft', 'cheekSquintRight', 'eyeBlinkLeft', 'eyeBlinkRight',
  'eyeLookDownLeft', 'eyeLookDownRight', 'eyeLookInLeft', 'eyeLookInRight', 'eyeLookOutLeft',
  'eyeLookOutRight', 'eyeLookUpLeft', 'eyeLookUpRight', 'eyeSquintLeft', 'eyeSquintRight',
  'eyeWideLeft', 'eyeWideRight', 'jawForward', 'jawLeft', 'jawOpen', 'jawRight', 'mouthClose',
  'mouthDimpleLeft', 'mouthDimpleRight', 'mouthFrownLeft', 'mouthFrownRight', 'mouthFunnel',
  'mouthLeft', 'mouthLowerDownLeft', 'mouthLowerDownRight', 'mouthPressLeft', 'mouthPressRight',
  'mouthPucker', 'mouthRight', 'mouthRollLower', 'mouthRollUpper', 'mouthShrugLower',
  'mouthShrugUpper', 'mouthSmileLeft', 'mouthSmileRight', 'mouthStretchLeft', 'mouthStretchRight',
  'mouthUpperUpLeft', 'mouthUpperUpRight', 'noseSneerLeft', 'noseSneerRight',
] as const;

export type BlendshapeName = (typeof BLENDSHAPE_NAMES)[number];

export const NUM_BLENDSHAPES = 52;
export const POSE_SIZE = 16;

/** Vertical field of view of the tracker's perspective camera, degrees. */
export const TRACKER_FOVY_DEG = 63;

/** One frame of driving coefficients. */
export interface CoefficientFrame {
  /** 52 scores in [0, 1], in BLENDSHAPE_NAMES order. */
  blendshapes: Float32Array;
  /** Column-major 4x4 face-to-camera transform, centimetres. */
  pose: Float32Array;
}

/** Frames at a fixed rate. */
export interface CoefficientTrack {
  fps: number;
  frames: CoefficientFrame[];
}

/** Index of a blendshape by name; throws a RangeError naming the valid set for an unknown name. */
export function blendshapeIndex(name: BlendshapeName | string): number {
  const i = (BLENDSHAPE_NAMES as readonly string[]).indexOf(name);
  if (i < 0) throw new RangeError(`unknown blendshape "${name}": expected one of the 52 MediaPipe names such as jawOpen`);
  return i;
}

/**
 * The rest expression of a track of `blendshapes` (frames x 52, frame-major): per blendshape, the
 * median over its frames (element floor(frames / 2) of the sorted values). A trained avatar has
 * only seen the tracker's coefficients, and all-zero blendshapes lie far outside them, so hand-set
 * expressions start here. The CPU tool (`make_synthetic_avatar render --rest`) uses the same rule.
 */
export function restBlendshapes(blendshapes: Float32Array): Float32Array {
  const frames = Math.floor(blendshapes.length / NUM_BLENDSHAPES);
  const rest = new Float32Array(NUM_BLENDSHAPES);
  if (frames === 0) return rest;
  const v = new Float32Array(frames);
  for (let k = 0; k < NUM_BLENDSHAPES; k++) {
    for (let f = 0; f < frames; f++) v[f] = blendshapes[f * NUM_BLENDSHAPES + k];
    v.sort();
    rest[k] = v[Math.floor(frames / 2)];
  }
  return rest;
}
