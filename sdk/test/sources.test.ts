import { describe, expect, it } from 'vitest';
import { BLENDSHAPE_NAMES, NUM_BLENDSHAPES, blendshapeIndex, restBlendshapes } from '../src/coefficients.js';
import { eulerFromPose, parseCsvTrack, parseJsonTrack, poseFromEuler, trackSource, SourceError } from '../src/sources/index.js';

describe('recorded tracks', () => {
  it('maps Live Link Face CSV columns onto the MediaPipe order and head angles onto a pose', () => {
    const csv = [
      'Timecode,BlendShapeCount,EyeBlinkLeft,JawOpen,MouthSmileRight,HeadYaw,HeadPitch,HeadRoll,LeftEyeYaw',
      '00:00:00:00.000,61,0.25,0.5,0.125,0,0,0,0.1',
      '00:00:00:01.000,61,0,1,0,0.5,0,0,0.1',
    ].join('\n');
    const t = parseCsvTrack(csv);
    expect(t.frames).toHaveLength(2);
    expect(t.frames[0].blendshapes[blendshapeIndex('eyeBlinkLeft')]).toBe(0.25);
    expect(t.frames[0].blendshapes[blendshapeIndex('jawOpen')]).toBe(0.5);
    expect(t.frames[0].blendshapes[blendshapeIndex('mouthSmileRight')]).toBe(0.125);
    expect(t.frames[1].blendshapes[blendshapeIndex('jawOpen')]).toBe(1);
    // Yaw turns the face's forward axis (column 2) towards +x by sin(yaw).
    expect(t.frames[1].pose[8]).toBeCloseTo(Math.sin(0.5), 6);
    expect(t.frames[0].pose[8]).toBeCloseTo(0, 6);
    expect(t.frames[0].pose[14]).toBe(-40);
  });

  it('pose matrices are rotations', () => {
    const p = poseFromEuler(0.3, -0.2, 0.1);
    for (let c = 0; c < 3; c++) {
      const n = Math.hypot(p[c * 4], p[c * 4 + 1], p[c * 4 + 2]);
      expect(n).toBeCloseTo(1, 6);
    }
    const dot = p[0] * p[4] + p[1] * p[5] + p[2] * p[6];
    expect(dot).toBeCloseTo(0, 6);
  });

  it('reads yaw, pitch and roll back from a pose, with a scale divided out', () => {
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
    for (let k = 0; k < 50; k++) {
      const yaw = 2.5 * rnd(), pitch = 1.4 * rnd(), roll = 2.5 * rnd();
      const p = poseFromEuler(yaw, pitch, roll);
      if (k % 2) for (let i = 0; i < 12; i++) p[i] *= 1.7;  // a uniformly scaled pose
      const e = eulerFromPose(p);
      expect(e.yaw).toBeCloseTo(yaw, 5);
      expect(e.pitch).toBeCloseTo(pitch, 5);
      expect(e.roll).toBeCloseTo(roll, 5);
    }
    expect(() => eulerFromPose([1, 0, 0])).toThrow(SourceError);
  });

  it('parses JSON tracks by name or by array', () => {
    const arr = Array.from({ length: 52 }, (_, i) => i / 100);
    const t = parseJsonTrack(JSON.stringify({ fps: 25, frames: [{ blendshapes: { jawOpen: 0.7 } }, { blendshapes: arr }] }));
    expect(t.fps).toBe(25);
    expect(t.frames[0].blendshapes[25]).toBeCloseTo(0.7, 6);
    expect(BLENDSHAPE_NAMES[25]).toBe('jawOpen');
    expect(t.frames[1].blendshapes[51]).toBeCloseTo(0.51, 6);
  });

  it('rejects bad tracks with a typed, readable error', () => {
    expect(() => parseJsonTrack('{not json')).toThrow(SourceError);
    expect(() => parseJsonTrack('{"fps":30,"frames":[{"blendshapes":{"jawOpn":1}}]}')).toThrow(/unknown blendshape "jawOpn"/);
    expect(() => parseCsvTrack('a,b\n1,2')).toThrow(/no blendshape columns/);
    expect(() => parseCsvTrack('JawOpen,HeadYaw\nabc,0')).toThrow(/column JawOpen is "abc"/);
  });

  it('trackSource replays frames in order over time', async () => {
    const t = parseJsonTrack(JSON.stringify({ fps: 100, frames: [0, 1, 2, 3].map((v) => ({ blendshapes: { jawOpen: v / 4 } })) }));
    const seen: number[] = [];
    const src = trackSource(t, { loop: false });
    await src.start((f) => seen.push(f.blendshapes[25]));
    await new Promise((r) => setTimeout(r, 120));
    src.stop();
    expect(seen[0]).toBe(0);
    expect(seen.at(-1)).toBe(0.75);
    for (let i = 1; i < seen.length; i++) expect(seen[i]).toBeGreaterThan(seen[i - 1]);
  });
});

describe('restBlendshapes', () => {
  it('takes each blendshape\'s median over the frames (element floor(n / 2) sorted)', () => {
    const jaw = blendshapeIndex('jawOpen'), blink = blendshapeIndex('eyeBlinkLeft');
    const track = (values: number[][]) => {
      const t = new Float32Array(values.length * NUM_BLENDSHAPES);
      values.forEach(([j, b], f) => { t[f * NUM_BLENDSHAPES + jaw] = j; t[f * NUM_BLENDSHAPES + blink] = b; });
      return t;
    };
    // Odd count: the middle value, whatever the order; an outlier does not move it.
    let r = restBlendshapes(track([[0.9, 0], [0.1, 1], [0.3, 0], [0.2, 0], [1, 0]]));
    expect(r[jaw]).toBeCloseTo(0.3, 6);
    expect(r[blink]).toBe(0);
    // Even count: the upper of the two middle values (the C++ tool's nth_element at n / 2).
    r = restBlendshapes(track([[0.4, 0.5], [0.1, 0.5], [0.2, 0.25], [0.8, 1]]));
    expect(r[jaw]).toBeCloseTo(0.4, 6);
    expect(r[blink]).toBeCloseTo(0.5, 6);
    expect(r.length).toBe(NUM_BLENDSHAPES);
    expect(Array.from(restBlendshapes(new Float32Array(0)))).toEqual(new Array(NUM_BLENDSHAPES).fill(0));
  });
});
