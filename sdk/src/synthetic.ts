/**
 * A procedural avatar: an ellipsoidal head with seeded random networks. It exercises every stage
 * of the pipeline (jawOpen moves the surface, the texture depends on position and condition) and
 * needs no asset file, so tests, demos and benchmarks can run anywhere.
 */
import { ACT_LEAKY_RELU, ACT_RELU, ACT_SIGMOID, conditionParamCount, mlpParamCount, type ModelData } from './model.js';

export interface SyntheticOptions {
  gridRes?: number;
  width?: number;
  height?: number;
  log2Table?: number;
  levels?: number;
  mlpWidth?: number;
  seed?: number;
  clipFrames?: number;
}

// Mulberry32: small, seeded, the same in every engine.
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function randomArray(n: number, scale: number, r: () => number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = (r() * 2 - 1) * scale;
  return a;
}

export function syntheticModel(o: SyntheticOptions = {}): ModelData {
  const R = o.gridRes ?? 24;
  const width = o.width ?? 128;
  const height = o.height ?? 128;
  const levels = o.levels ?? 8;
  const log2Table = o.log2Table ?? 12;
  const mw = o.mlpWidth ?? 16;
  const r = rng(o.seed ?? 1);
  const boxMin: [number, number, number] = [-10, -12, -10];
  const boxMax: [number, number, number] = [10, 12, 10];
  const n = R + 1;
  const sdf = new Float32Array(n ** 3);
  const elastic = new Float32Array(n ** 3).fill(1.0);
  const radii = [7, 9, 7.5];
  for (let k = 0; k < n; k++)
    for (let j = 0; j < n; j++)
      for (let i = 0; i < n; i++) {
        const p = [i, j, k].map((q, a) => boxMin[a] + (boxMax[a] - boxMin[a]) * (q / R));
        // Scaled-ellipsoid distance: exact enough near the surface for marching tets.
        const e = Math.hypot(p[0] / radii[0], p[1] / radii[1], p[2] / radii[2]);
        sdf[i + n * (j + n * k)] = (e - 1) * 7.5;
      }
  const condition = { window: 9, conv: [{ inCh: 52, outCh: 16, kernel: 3, stride: 2 }, { inCh: 16, outCh: 16, kernel: 3, stride: 1 }], outDim: 8 };
  const conditionParams = randomArray(conditionParamCount(condition), 0.3, r);
  const deformMlp = { in: 3 + 6 * 2 + 8, width: mw, hiddenLayers: 1, out: 4, hiddenAct: ACT_RELU, outAct: 0 };
  const deformParams = randomArray(mlpParamCount(deformMlp), 0.5, r);
  const textureGrid = { levels, features: 2, log2Table, baseRes: 4, finestRes: 64 };
  const textureMlp = { in: levels * 2 + 8, width: mw, hiddenLayers: 1, out: 3, hiddenAct: ACT_LEAKY_RELU, outAct: ACT_SIGMOID };
  const hashTables = randomArray(levels * 2 ** log2Table * 2, 1, r);
  const textureParams = randomArray(mlpParamCount(textureMlp), 0.6, r);
  const background = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      const q = (y * width + x) * 4;
      background[q] = 40 + ((x * 96) / width) | 0;
      background[q + 1] = 60;
      background[q + 2] = 90 + ((y * 96) / height) | 0;
      background[q + 3] = 255;
    }
  const frames = o.clipFrames ?? 25;
  const bs = new Float32Array(frames * 52);
  const poses = new Float32Array(frames * 16);
  for (let f = 0; f < frames; f++) {
    bs[f * 52 + 25] = 0.5 - 0.5 * Math.cos((2 * Math.PI * f) / frames); // jawOpen
    const a = 0.3 * Math.sin((2 * Math.PI * f) / frames);
    poses.set([Math.cos(a), 0, -Math.sin(a), 0, 0, 1, 0, 0, Math.sin(a), 0, Math.cos(a), 0, 0, 0, -30, 1], f * 16);
  }
  return {
    name: 'synthetic', width, height, fovyDeg: 63, znear: 1, zfar: 10000, boxMin, boxMax, gridRes: R,
    sdf, elasticScale: elastic, activeBand: 3, condition, conditionParams, deformFreq: 2, deformMlp, deformParams,
    sdfDeltaScale: 0.5, freezeSdfDelta: false, textureGrid, textureMlp, hashTables, textureParams, background,
    clips: [{ name: 'talk', fps: 25, blendshapes: bs, poses }],
  };
}
