/**
 * `@dyntet/player/onnx`: drive an avatar with any ONNX model through onnxruntime-web, which is
 * imported only when a driver is created.
 *
 * Model contract:
 * - one float32 input (its name is read from the model): features of shape [N, F] (N frames,
 *   F features each, e.g. audio features at the track's frame rate);
 * - an output named `blendshapes` (or else the first output) of shape [N, 52]: scores in
 *   BLENDSHAPE_NAMES order (values are clamped to [0, 1]);
 * - optionally an output named `pose`, shape [N, 16] (column-major 4x4, cm) or [N, 3]
 *   (yaw, pitch, roll in radians). Without it the head faces the camera.
 */
import { NUM_BLENDSHAPES, type CoefficientFrame } from './coefficients.js';
import { SourceError, poseFromEuler, type CoefficientSource } from './sources/source.js';

export { SourceError } from './sources/source.js';
export type { CoefficientSource } from './sources/source.js';

export interface OnnxDriverOptions {
  /** Where onnxruntime-web finds its .wasm files (a URL prefix); its default otherwise. */
  wasmPaths?: string;
}

interface OrtTensor { data: unknown; dims: readonly number[] }
interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

/** A loaded ONNX model that maps feature rows to coefficient frames. */
export class OnnxDriver {
  private constructor(
    private readonly session: OrtSession,
    private readonly TensorCtor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown,
  ) {}

  /** Loads a model from bytes or a URL. Rejects with SourceError('BAD_MODEL') when it does not fit the contract. */
  static async create(model: Uint8Array | string, options: OnnxDriverOptions = {}): Promise<OnnxDriver> {
    const ort = await import('onnxruntime-web');
    if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
    let session: OrtSession;
    try {
      session = (await ort.InferenceSession.create(model as Uint8Array)) as unknown as OrtSession;
    } catch (e) {
      throw new SourceError('BAD_MODEL', `the ONNX model did not load (${(e as Error).message}): pass a valid .onnx file`);
    }
    if (session.inputNames.length !== 1) {
      await session.release();
      throw new SourceError('BAD_MODEL', `the ONNX model has ${session.inputNames.length} inputs; the contract is one float32 input [N, F]`);
    }
    return new OnnxDriver(session, ort.Tensor as never);
  }

  /** Runs the model on `frames` rows of `features.length / frames` features; one coefficient frame per row. */
  async run(features: Float32Array, frames = 1): Promise<CoefficientFrame[]> {
    if (!(frames >= 1) || features.length % frames !== 0)
      throw new SourceError('BAD_INPUT', `features has ${features.length} values, not a multiple of ${frames} frames`);
    const input = new this.TensorCtor('float32', features, [frames, features.length / frames]);
    let out: Record<string, OrtTensor>;
    try {
      out = await this.session.run({ [this.session.inputNames[0]]: input });
    } catch (e) {
      throw new SourceError('BAD_INPUT', `the ONNX model refused the input (${(e as Error).message}): check the feature size it expects`);
    }
    const bsName = this.session.outputNames.includes('blendshapes') ? 'blendshapes' : this.session.outputNames[0];
    const bs = out[bsName]?.data as Float32Array;
    if (!(bs instanceof Float32Array) || bs.length !== frames * NUM_BLENDSHAPES)
      throw new SourceError('BAD_MODEL', `output "${bsName}" has ${bs?.length} values; the contract is float32 [${frames}, ${NUM_BLENDSHAPES}]`);
    const pose = out.pose?.data as Float32Array | undefined;
    const per = pose ? pose.length / frames : 0;
    if (pose && per !== 16 && per !== 3) throw new SourceError('BAD_MODEL', `output "pose" has ${per} values per frame; the contract is 16 (4x4) or 3 (yaw, pitch, roll)`);
    const result: CoefficientFrame[] = [];
    for (let f = 0; f < frames; f++) {
      const b = new Float32Array(NUM_BLENDSHAPES);
      for (let k = 0; k < NUM_BLENDSHAPES; k++) b[k] = Math.min(1, Math.max(0, bs[f * NUM_BLENDSHAPES + k]));
      const p = !pose ? poseFromEuler(0, 0, 0) : per === 16 ? pose.slice(f * 16, f * 16 + 16) : poseFromEuler(pose[f * 3], pose[f * 3 + 1], pose[f * 3 + 2]);
      result.push({ blendshapes: b, pose: p });
    }
    return result;
  }

  async dispose(): Promise<void> {
    await this.session.release();
  }
}

/**
 * A CoefficientSource that asks `features(t)` for the current feature row every 1/fps seconds
 * (undefined skips a tick) and runs the model on it. Ticks never overlap: a slow model drops ticks.
 */
export function onnxSource(driver: OnnxDriver, features: (timeSeconds: number) => Float32Array | undefined, fps = 30): CoefficientSource {
  let timer: ReturnType<typeof setInterval> | undefined;
  let busy = false;
  return {
    async start(onFrame) {
      const t0 = performance.now();
      timer = setInterval(async () => {
        if (busy) return;
        const t = (performance.now() - t0) / 1000;
        const x = features(t);
        if (!x) return;
        busy = true;
        try {
          const [frame] = await driver.run(x, 1);
          if (timer !== undefined) onFrame(frame, t);
        } finally {
          busy = false;
        }
      }, 1000 / fps);
    },
    stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
}
