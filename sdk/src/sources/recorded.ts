/**
 * Recorded coefficient tracks: our JSON form and CSV in the ARKit / Live Link Face column
 * convention, parsed to a CoefficientTrack and replayed in real time as a CoefficientSource.
 */
import { BLENDSHAPE_NAMES, NUM_BLENDSHAPES, POSE_SIZE, type CoefficientFrame, type CoefficientTrack } from '../coefficients.js';
import { SourceError, poseFromEuler, type CoefficientSource } from './source.js';

/**
 * JSON track: `{ "fps": 30, "frames": [{ "blendshapes": {jawOpen: 0.4, ...} | number[52],
 * "pose"?: number[16] }] }`. Missing blendshapes are 0; a missing pose faces the camera.
 */
export function parseJsonTrack(text: string): CoefficientTrack {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new SourceError('BAD_TRACK', `track JSON does not parse (${(e as Error).message}): expected {"fps": 30, "frames": [...]}`);
  }
  const d = doc as { fps?: unknown; frames?: unknown };
  if (typeof d !== 'object' || d === null || typeof d.fps !== 'number' || !(d.fps > 0) || !Array.isArray(d.frames))
    throw new SourceError('BAD_TRACK', 'track JSON needs a positive number "fps" and an array "frames"');
  if (d.frames.length === 0) throw new SourceError('BAD_TRACK', 'track JSON has no frames');
  const frames = d.frames.map((f: unknown, i: number): CoefficientFrame => {
    const fr = f as { blendshapes?: unknown; pose?: unknown };
    const bs = new Float32Array(NUM_BLENDSHAPES);
    if (Array.isArray(fr?.blendshapes)) {
      if (fr.blendshapes.length !== NUM_BLENDSHAPES)
        throw new SourceError('BAD_TRACK', `frame ${i}: blendshapes array has ${fr.blendshapes.length} values, expected ${NUM_BLENDSHAPES} in MediaPipe order`);
      fr.blendshapes.forEach((v, k) => (bs[k] = num(v, `frame ${i} blendshapes[${k}]`)));
    } else if (fr?.blendshapes && typeof fr.blendshapes === 'object') {
      for (const [name, v] of Object.entries(fr.blendshapes)) {
        const k = blendshapeIndexLoose(name);
        if (k < 0) throw new SourceError('BAD_TRACK', `frame ${i}: unknown blendshape "${name}" (use the 52 MediaPipe/ARKit names, e.g. jawOpen)`);
        bs[k] = num(v, `frame ${i} ${name}`);
      }
    } else throw new SourceError('BAD_TRACK', `frame ${i}: "blendshapes" must be an object of name -> score or an array of 52`);
    let pose = poseFromEuler(0, 0, 0);
    if (fr.pose !== undefined) {
      if (!Array.isArray(fr.pose) || fr.pose.length !== POSE_SIZE)
        throw new SourceError('BAD_TRACK', `frame ${i}: "pose" must be 16 numbers (column-major 4x4, cm)`);
      pose = new Float32Array(fr.pose.map((v, k) => num(v, `frame ${i} pose[${k}]`)));
    }
    return { blendshapes: bs, pose };
  });
  return { fps: d.fps, frames };
}

export interface CsvOptions {
  /** Frame rate when the CSV has no usable Timecode column (default 60, Live Link Face's rate). */
  fps?: number;
  /** Unit of HeadYaw/HeadPitch/HeadRoll (default 'rad'). */
  angleUnit?: 'rad' | 'deg';
  /** Distance of the head from the camera in cm for the pose (default 40). */
  distanceCm?: number;
}

/**
 * CSV in the ARKit / Live Link Face convention: a header row with columns such as `Timecode`,
 * `BlendShapeCount`, `EyeBlinkLeft`, `JawOpen`, ..., `HeadYaw`, `HeadPitch`, `HeadRoll`. Column
 * names match BLENDSHAPE_NAMES ignoring case; unknown columns (eye yaw, timecode) are ignored.
 */
export function parseCsvTrack(text: string, options: CsvOptions = {}): CoefficientTrack {
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '');
  if (lines.length < 2) throw new SourceError('BAD_TRACK', 'CSV track needs a header row and at least one data row');
  const header = lines[0].split(',').map((h) => h.trim());
  const map: [number, number][] = [];
  let yaw = -1, pitch = -1, roll = -1;
  header.forEach((h, col) => {
    const k = blendshapeIndexLoose(h);
    if (k >= 0) map.push([col, k]);
    const l = h.toLowerCase();
    if (l === 'headyaw') yaw = col;
    else if (l === 'headpitch') pitch = col;
    else if (l === 'headroll') roll = col;
  });
  if (map.length === 0)
    throw new SourceError('BAD_TRACK', `CSV header has no blendshape columns (saw ${header.slice(0, 4).join(', ')}...): expected ARKit names such as JawOpen, EyeBlinkLeft`);
  const k = options.angleUnit === 'deg' ? Math.PI / 180 : 1;
  const frames = lines.slice(1).map((line, r): CoefficientFrame => {
    const cells = line.split(',');
    if (cells.length < header.length) throw new SourceError('BAD_TRACK', `CSV row ${r + 2} has ${cells.length} cells, the header has ${header.length}`);
    const bs = new Float32Array(NUM_BLENDSHAPES);
    for (const [col, idx] of map) bs[idx] = num(cells[col], `CSV row ${r + 2} column ${header[col]}`);
    const a = (c: number) => (c < 0 ? 0 : num(cells[c], `CSV row ${r + 2} column ${header[c]}`) * k);
    return { blendshapes: bs, pose: poseFromEuler(a(yaw), a(pitch), a(roll), options.distanceCm) };
  });
  return { fps: options.fps ?? 60, frames };
}

/** Replays a track in real time (looping by default) on a timer; frame = floor(t * fps). */
export function trackSource(track: CoefficientTrack, options: { loop?: boolean } = {}): CoefficientSource {
  let timer: ReturnType<typeof setInterval> | undefined;
  return {
    async start(onFrame) {
      if (track.frames.length === 0) throw new SourceError('BAD_TRACK', 'the track has no frames');
      const t0 = performance.now();
      let last = -1;
      const tick = () => {
        const t = (performance.now() - t0) / 1000;
        let f = Math.floor(t * track.fps);
        if (f >= track.frames.length) {
          if (options.loop === false) {
            // A late timer may skip frames; never skip the last one of a one-shot track.
            const end = track.frames.length - 1;
            if (last !== end) onFrame(track.frames[(last = end)], t);
            return this.stop();
          }
          f %= track.frames.length;
        }
        if (f !== last) onFrame(track.frames[(last = f)], t);
      };
      tick();
      timer = setInterval(tick, 1000 / Math.min(track.fps, 120));
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}

function blendshapeIndexLoose(name: string): number {
  const l = name.trim().toLowerCase();
  return (BLENDSHAPE_NAMES as readonly string[]).findIndex((n) => n.toLowerCase() === l);
}

function num(v: unknown, where: string): number {
  const x = typeof v === 'string' ? Number(v.trim()) : v;
  if (typeof x !== 'number' || !Number.isFinite(x)) throw new SourceError('BAD_TRACK', `${where} is ${JSON.stringify(v)}: expected a finite number`);
  return x;
}
