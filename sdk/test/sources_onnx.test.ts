// The ONNX source against the real onnxruntime-web (wasm backend in Node) with a model this test
// writes itself: blendshapes = Sigmoid(x W + b), pose = x P (yaw, pitch, roll), via a tiny
// protobuf encoder of the few ONNX messages needed.
import { describe, expect, it } from 'vitest';
import { OnnxDriver, onnxSource, SourceError } from '../src/onnx.js';

const enc = new TextEncoder();
function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) { out.push((n & 127) | 128); n = Math.floor(n / 128); }
  out.push(n);
  return out;
}
const fieldVarint = (f: number, v: number) => [...varint(f << 3), ...varint(v)];
const fieldBytes = (f: number, b: Uint8Array | number[]) => [...varint((f << 3) | 2), ...varint(b.length), ...b];
const fieldStr = (f: number, s: string) => fieldBytes(f, enc.encode(s));

function tensor(name: string, dims: number[], data: Float32Array): number[] {
  return [...dims.flatMap((d) => fieldVarint(1, d)), ...fieldVarint(2, 1), ...fieldStr(8, name), ...fieldBytes(9, new Uint8Array(data.buffer.slice(0)))];
}
function valueInfo(name: string, dims: (number | string)[]): number[] {
  const shape = dims.flatMap((d) => fieldBytes(1, typeof d === 'number' ? fieldVarint(1, d) : fieldStr(2, d)));
  const tensorType = [...fieldVarint(1, 1), ...fieldBytes(2, shape)];
  return [...fieldStr(1, name), ...fieldBytes(2, fieldBytes(1, tensorType))];
}
function node(op: string, inputs: string[], outputs: string[]): number[] {
  return [...inputs.flatMap((i) => fieldStr(1, i)), ...outputs.flatMap((o) => fieldStr(2, o)), ...fieldStr(3, op + '_' + outputs[0]), ...fieldStr(4, op)];
}
function model(F: number, W: Float32Array, b: Float32Array, P: Float32Array): Uint8Array {
  const graph = [
    ...fieldBytes(1, node('MatMul', ['x', 'W'], ['xw'])),
    ...fieldBytes(1, node('Add', ['xw', 'b'], ['z'])),
    ...fieldBytes(1, node('Sigmoid', ['z'], ['blendshapes'])),
    ...fieldBytes(1, node('MatMul', ['x', 'P'], ['pose'])),
    ...fieldStr(2, 'driver'),
    ...fieldBytes(5, tensor('W', [F, 52], W)),
    ...fieldBytes(5, tensor('b', [52], b)),
    ...fieldBytes(5, tensor('P', [F, 3], P)),
    ...fieldBytes(11, valueInfo('x', ['N', F])),
    ...fieldBytes(12, valueInfo('blendshapes', ['N', 52])),
    ...fieldBytes(12, valueInfo('pose', ['N', 3])),
  ];
  const opset = [...fieldStr(1, ''), ...fieldVarint(2, 13)];
  return new Uint8Array([...fieldVarint(1, 8), ...fieldStr(2, 'dyntet-test'), ...fieldBytes(7, graph), ...fieldBytes(8, opset)]);
}

function seeded(n: number, seed: number): Float32Array {
  const a = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) { s = (s * 1664525 + 1013904223) >>> 0; a[i] = (s / 2 ** 32) * 2 - 1; }
  return a;
}

describe('ONNX coefficient source', () => {
  const F = 4;
  const W = seeded(F * 52, 1), b = seeded(52, 2), P = seeded(F * 3, 3).map((v) => v * 0.3);
  const bytes = model(F, W, b, P);

  it('runs a model that follows the contract and maps rows to frames', async () => {
    const driver = await OnnxDriver.create(bytes);
    const x = new Float32Array([0.5, -1, 0.25, 2, 1, 0, 0, -0.5]);
    const frames = await driver.run(x, 2);
    expect(frames).toHaveLength(2);
    for (let f = 0; f < 2; f++) {
      for (let k = 0; k < 52; k++) {
        let z = b[k];
        for (let i = 0; i < F; i++) z += x[f * F + i] * W[i * 52 + k];
        expect(frames[f].blendshapes[k]).toBeCloseTo(1 / (1 + Math.exp(-z)), 5);
      }
      let yaw = 0;
      for (let i = 0; i < F; i++) yaw += x[f * F + i] * P[i * 3];
      // Yaw's sine is the x component of the face's forward axis (poseFromEuler).
      expect(frames[f].pose[8]).toBeCloseTo(Math.sin(yaw) * Math.cos(Math.asin(-frames[f].pose[9])), 4);
      expect(frames[f].pose[14]).toBe(-40);
    }
    await driver.dispose();
  });

  it('onnxSource feeds frames over time', async () => {
    const driver = await OnnxDriver.create(bytes);
    const seen: Float32Array[] = [];
    const src = onnxSource(driver, (t) => new Float32Array([t, 0, 0, 0]), 50);
    await src.start((f) => seen.push(f.blendshapes));
    await new Promise((r) => setTimeout(r, 300));
    src.stop();
    expect(seen.length).toBeGreaterThan(2);
    expect(seen[0]).not.toEqual(seen.at(-1));
    await driver.dispose();
  });

  it('refuses a broken model and a wrong input with typed errors', async () => {
    await expect(OnnxDriver.create(new Uint8Array([1, 2, 3, 4]))).rejects.toBeInstanceOf(SourceError);
    const driver = await OnnxDriver.create(bytes);
    await expect(driver.run(new Float32Array(5), 1)).rejects.toThrow(/refused the input/);
    await expect(driver.run(new Float32Array(5), 2)).rejects.toThrow(/not a multiple/);
    await driver.dispose();
  });
});
