// The renderer's camera in TypeScript: a port of project_to_clip / clip_to_pixel in
// native/core/model.h (the single source of truth; keep the two in step).
// OpenGL perspective, vertical field of view fovy, camera looking down -z, pixels from the top-left.

export interface Camera {
  fovy_deg: number;
  znear: number;
  zfar: number;
  width: number;
  height: number;
}

export function trackerCamera(width: number, height: number): Camera {
  return { fovy_deg: 63, znear: 1, zfar: 10000, width, height };
}

/** Focal length in pixels along y (and x: square pixels). */
export function focalPx(cam: Camera): number {
  return cam.height / 2 / Math.tan((0.5 * cam.fovy_deg * Math.PI) / 180);
}

/** model.h project_to_clip: face-space point -> clip (x, y, z, w) through a column-major pose. */
export function projectToClip(cam: Camera, pose: ArrayLike<number>, p: ArrayLike<number>): [number, number, number, number] {
  const v = [0, 0, 0];
  for (let r = 0; r < 3; r++) v[r] = pose[r] * p[0] + pose[4 + r] * p[1] + pose[8 + r] * p[2] + pose[12 + r];
  const f = 1 / Math.tan((0.5 * cam.fovy_deg * Math.PI) / 180);
  const aspect = cam.width / cam.height;
  return [
    (f / aspect) * v[0],
    f * v[1],
    ((cam.zfar + cam.znear) / (cam.znear - cam.zfar)) * v[2] + (2 * cam.zfar * cam.znear) / (cam.znear - cam.zfar),
    -v[2],
  ];
}

/** model.h clip_to_pixel. */
export function clipToPixel(cam: Camera, clip: ArrayLike<number>): [number, number] {
  return [(clip[0] / clip[3] * 0.5 + 0.5) * cam.width, (0.5 - clip[1] / clip[3] * 0.5) * cam.height];
}

/** Face-space point -> pixel. */
export function projectPoint(cam: Camera, pose: ArrayLike<number>, p: ArrayLike<number>): [number, number] {
  return clipToPixel(cam, projectToClip(cam, pose, p));
}

/** The inverse of the projection for a camera-space depth z (< 0): pixel -> camera-space point. */
export function unprojectPixel(cam: Camera, px: number, py: number, z: number): [number, number, number] {
  const f = 1 / Math.tan((0.5 * cam.fovy_deg * Math.PI) / 180);
  const aspect = cam.width / cam.height;
  const nx = (px / cam.width - 0.5) * 2, ny = (0.5 - py / cam.height) * 2;
  const w = -z;
  return [(nx * w * aspect) / f, (ny * w) / f, z];
}

/** Inverse of a rigid-or-similarity column-major 4x4 (rotation*scale + translation). */
export function invertPose(m: ArrayLike<number>): Float64Array {
  // 3x3 inverse by cofactors, then -A^-1 t.
  const a = m[0], b = m[4], c = m[8], d = m[1], e = m[5], f = m[9], g = m[2], h = m[6], i = m[10];
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  const inv = [
    A / det, -(b * i - c * h) / det, (b * f - c * e) / det,
    B / det, (a * i - c * g) / det, -(a * f - c * d) / det,
    C / det, -(a * h - b * g) / det, (a * e - b * d) / det,
  ]; // row-major
  const t = [m[12], m[13], m[14]];
  const out = new Float64Array(16);
  for (let r = 0; r < 3; r++) {
    for (let k = 0; k < 3; k++) out[k * 4 + r] = inv[r * 3 + k];
    out[12 + r] = -(inv[r * 3] * t[0] + inv[r * 3 + 1] * t[1] + inv[r * 3 + 2] * t[2]);
  }
  out[15] = 1;
  return out;
}

export function transformPoint(m: ArrayLike<number>, p: ArrayLike<number>): [number, number, number] {
  return [
    m[0] * p[0] + m[4] * p[1] + m[8] * p[2] + m[12],
    m[1] * p[0] + m[5] * p[1] + m[9] * p[2] + m[13],
    m[2] * p[0] + m[6] * p[1] + m[10] * p[2] + m[14],
  ];
}
