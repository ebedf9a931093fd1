// Small ONNX models written by the tests themselves (no Python `onnx` here): a protobuf encoder of
// the few ModelProto fields a linear driver needs. The model follows @dyntet/player/onnx's
// contract: one float32 input x [N, F]; blendshapes = x W + b, [N, 52]; optionally pose = x P,
// [N, 3] (yaw, pitch, roll). Opset 13, IR version 8.
const enc = new TextEncoder();

function varint(n: number): number[] {
  const out: number[] = [];
  while (n > 127) {
    out.push((n & 127) | 128);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return out;
}
const fieldVarint = (f: number, v: number): number[] => [...varint(f << 3), ...varint(v)];
const fieldBytes = (f: number, b: Uint8Array | number[]): number[] => [...varint((f << 3) | 2), ...varint(b.length), ...b];
const fieldStr = (f: number, s: string): number[] => fieldBytes(f, enc.encode(s));

/** TensorProto: dims, data_type FLOAT (1), name, raw_data (little-endian float32). */
function tensor(name: string, dims: number[], data: Float32Array): number[] {
  return [...dims.flatMap((d) => fieldVarint(1, d)), ...fieldVarint(2, 1), ...fieldStr(8, name), ...fieldBytes(9, new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)))];
}
/** ValueInfoProto of a float tensor; a string dimension is symbolic. */
function valueInfo(name: string, dims: (number | string)[]): number[] {
  const shape = dims.flatMap((d) => fieldBytes(1, typeof d === 'number' ? fieldVarint(1, d) : fieldStr(2, d)));
  const tensorType = [...fieldVarint(1, 1), ...fieldBytes(2, shape)];
  return [...fieldStr(1, name), ...fieldBytes(2, fieldBytes(1, tensorType))];
}
function node(op: string, inputs: string[], outputs: string[]): number[] {
  return [...inputs.flatMap((i) => fieldStr(1, i)), ...outputs.flatMap((o) => fieldStr(2, o)), ...fieldStr(3, `${op}_${outputs[0]}`), ...fieldStr(4, op)];
}

export interface LinearDriver {
  /** Features per input row. */
  features: number;
  /** [features, 52] row-major. */
  W: Float32Array;
  /** [52]. */
  b: Float32Array;
  /** [features, 3] row-major: a `pose` output of yaw, pitch, roll; absent: no pose output. */
  P?: Float32Array;
}

/** The bytes of an ONNX model computing `blendshapes = x W + b` (and `pose = x P`). */
export function linearDriverModel(m: LinearDriver): Uint8Array {
  const F = m.features;
  if (m.W.length !== F * 52 || m.b.length !== 52 || (m.P && m.P.length !== F * 3)) throw new Error('linearDriverModel: W is [F, 52], b [52], P [F, 3]');
  const graph = [
    ...fieldBytes(1, node('MatMul', ['x', 'W'], ['xw'])),
    ...fieldBytes(1, node('Add', ['xw', 'b'], ['blendshapes'])),
    ...(m.P ? fieldBytes(1, node('MatMul', ['x', 'P'], ['pose'])) : []),
    ...fieldStr(2, 'linear_driver'),
    ...fieldBytes(5, tensor('W', [F, 52], m.W)),
    ...fieldBytes(5, tensor('b', [52], m.b)),
    ...(m.P ? fieldBytes(5, tensor('P', [F, 3], m.P)) : []),
    ...fieldBytes(11, valueInfo('x', ['N', F])),
    ...fieldBytes(12, valueInfo('blendshapes', ['N', 52])),
    ...(m.P ? fieldBytes(12, valueInfo('pose', ['N', 3])) : []),
  ];
  const opset = [...fieldStr(1, ''), ...fieldVarint(2, 13)];
  return new Uint8Array([...fieldVarint(1, 8), ...fieldStr(2, 'dyntet-e2e'), ...fieldBytes(7, graph), ...fieldBytes(8, opset)]);
}

/** What the model computes, in float64 then rounded as the contract's clamp to [0, 1] does. */
export function linearDriverBlendshapes(m: LinearDriver, x: ArrayLike<number>): Float32Array {
  const out = new Float32Array(52);
  for (let k = 0; k < 52; k++) {
    let z = m.b[k];
    for (let i = 0; i < m.features; i++) z += x[i] * m.W[i * 52 + k];
    out[k] = Math.min(1, Math.max(0, z));
  }
  return out;
}
