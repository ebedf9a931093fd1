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
 * Every output value must be finite.
 *
 * Errors are SourceError with a code per cause: MODEL_LOAD_FAILED (the model or the runtime did
 * not load), MODEL_SHAPE (inputs or outputs do not fit the contract, or the features do not fit
 * the model), INFERENCE_FAILED (the model failed while running), NON_FINITE_OUTPUT (NaN or
 * Infinity in an output), BAD_INPUT (features that are not whole rows of finite numbers).
 */
import { BLENDSHAPE_NAMES, NUM_BLENDSHAPES, type CoefficientFrame } from './coefficients.js';
import { SourceError, poseFromEuler, type CoefficientSource } from './sources/source.js';

export { SourceError } from './sources/source.js';
export type { CoefficientSource, SourceErrorCode } from './sources/source.js';

export interface OnnxDriverOptions {
  /** Where onnxruntime-web finds its .wasm files (a URL prefix); its default otherwise. */
  wasmPaths?: string;
}

interface OrtTensor { data: unknown; dims: readonly number[]; type?: string }
interface OrtValueMetadata { name: string; isTensor: boolean; type?: string; shape?: ReadonlyArray<number | string> }
interface OrtSession {
  inputNames: readonly string[];
  outputNames: readonly string[];
  inputMetadata?: readonly OrtValueMetadata[];
  outputMetadata?: readonly OrtValueMetadata[];
  run(feeds: Record<string, unknown>): Promise<Record<string, OrtTensor>>;
  release(): Promise<void>;
}

const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
/** The last dimension of a declared shape when it is a number (symbolic or unknown: undefined). */
const lastDim = (m: OrtValueMetadata | undefined) => {
  const d = m?.isTensor ? m.shape?.at(-1) : undefined;
  return typeof d === 'number' && d > 0 ? d : undefined;
};
/**
 * onnxruntime's messages for an input the model does not accept ("Got invalid dimensions for
 * input: x ...", "Invalid rank for input: x ..."); not the node names of its other messages.
 */
const SHAPE_MESSAGE = /invalid (dimensions|rank) for input|unexpected input data type/i;

/** A loaded ONNX model that maps feature rows to coefficient frames. */
export class OnnxDriver {
  private disposed = false;

  private constructor(
    private readonly session: OrtSession,
    private readonly TensorCtor: new (type: 'float32', data: Float32Array, dims: number[]) => unknown,
    /** Features per row the model declares (undefined when its input shape leaves it open). */
    readonly features: number | undefined,
  ) {}

  /**
   * Loads a model from bytes or a URL. Rejects with SourceError: MODEL_LOAD_FAILED when the model
   * (or onnxruntime-web) does not load, MODEL_SHAPE when its declared inputs and outputs do not fit
   * the contract.
   */
  static async create(model: Uint8Array | string, options: OnnxDriverOptions = {}): Promise<OnnxDriver> {
    let ort: typeof import('onnxruntime-web');
    try {
      ort = await import('onnxruntime-web');
    } catch (e) {
      throw new SourceError('MODEL_LOAD_FAILED', `onnxruntime-web did not load (${message(e)}): install it beside @dyntet/player`);
    }
    if (options.wasmPaths) ort.env.wasm.wasmPaths = options.wasmPaths;
    let session: OrtSession;
    try {
      session = (await ort.InferenceSession.create(model as Uint8Array)) as unknown as OrtSession;
    } catch (e) {
      throw new SourceError('MODEL_LOAD_FAILED', `the ONNX model did not load (${message(e)}): pass a valid .onnx file`);
    }
    const refuse = async (why: string): Promise<never> => {
      await session.release().catch(() => {});
      throw new SourceError('MODEL_SHAPE', `${why}; the contract is one float32 input [N, F] and an output "blendshapes" [N, ${NUM_BLENDSHAPES}] (docs: @dyntet/player/onnx)`);
    };
    if (session.inputNames.length !== 1) await refuse(`the ONNX model has ${session.inputNames.length} inputs`);
    // What the model declares, where onnxruntime reports it (1.20 and later): checked now, so a
    // model that cannot fit is refused before anything runs. run() checks what it returns anyway.
    const input = session.inputMetadata?.[0];
    if (input && !input.isTensor) await refuse(`the ONNX model's input "${input.name}" is not a tensor`);
    if (input?.type && input.type !== 'float32') await refuse(`the ONNX model's input "${input.name}" is ${input.type}, not float32`);
    if (input?.shape && input.shape.length !== 0 && input.shape.length !== 2) await refuse(`the ONNX model's input "${input.name}" has shape [${input.shape.join(', ')}], not [N, F]`);
    const outMeta = (name: string) => session.outputMetadata?.[session.outputNames.indexOf(name)];
    const bsName = session.outputNames.includes('blendshapes') ? 'blendshapes' : session.outputNames[0];
    const bsWidth = lastDim(outMeta(bsName));
    if (bsWidth !== undefined && bsWidth !== NUM_BLENDSHAPES) await refuse(`the ONNX model's output "${bsName}" has ${bsWidth} values per row, not ${NUM_BLENDSHAPES}`);
    const poseWidth = session.outputNames.includes('pose') ? lastDim(outMeta('pose')) : undefined;
    if (poseWidth !== undefined && poseWidth !== 16 && poseWidth !== 3) await refuse(`the ONNX model's output "pose" has ${poseWidth} values per row, not 16 (4x4) or 3 (yaw, pitch, roll)`);
    return new OnnxDriver(session, ort.Tensor as never, input?.shape?.length === 2 ? lastDim(input) : undefined);
  }

  /**
   * Runs the model on `frames` rows of `features.length / frames` features; one coefficient frame
   * per row. Rejects with SourceError (BAD_INPUT, MODEL_SHAPE, INFERENCE_FAILED, NON_FINITE_OUTPUT)
   * and then returns no frame at all.
   */
  async run(features: Float32Array, frames = 1): Promise<CoefficientFrame[]> {
    if (this.disposed) throw new SourceError('INFERENCE_FAILED', 'this OnnxDriver was disposed: create a new one');
    if (!(features instanceof Float32Array)) throw new SourceError('BAD_INPUT', 'features must be a Float32Array');
    if (!Number.isInteger(frames) || frames < 1 || features.length === 0 || features.length % frames !== 0)
      throw new SourceError('BAD_INPUT', `features has ${features.length} values, not a multiple of ${frames} frames`);
    const width = features.length / frames;
    for (let i = 0; i < features.length; i++)
      if (!Number.isFinite(features[i])) throw new SourceError('BAD_INPUT', `features[${i}] is ${features[i]}: every feature must be finite`);
    if (this.features !== undefined && width !== this.features)
      throw new SourceError('MODEL_SHAPE', `the ONNX model refused the input: it takes ${this.features} features per row, got ${width}`);
    const input = new this.TensorCtor('float32', features, [frames, width]);
    let out: Record<string, OrtTensor>;
    try {
      out = await this.session.run({ [this.session.inputNames[0]]: input });
    } catch (e) {
      const m = message(e);
      if (SHAPE_MESSAGE.test(m)) throw new SourceError('MODEL_SHAPE', `the ONNX model refused the input (${m}): check the feature size it expects`);
      throw new SourceError('INFERENCE_FAILED', `the ONNX model failed while running (${m})`);
    }
    const bsName = this.session.outputNames.includes('blendshapes') ? 'blendshapes' : this.session.outputNames[0];
    const bs = out[bsName]?.data;
    if (!(bs instanceof Float32Array) || bs.length !== frames * NUM_BLENDSHAPES)
      throw new SourceError('MODEL_SHAPE', `output "${bsName}" is ${out[bsName]?.type ?? typeof bs} [${out[bsName]?.dims?.join(', ') ?? ''}]; the contract is float32 [${frames}, ${NUM_BLENDSHAPES}]`);
    const pose = out.pose?.data;
    if (pose !== undefined && !(pose instanceof Float32Array)) throw new SourceError('MODEL_SHAPE', `output "pose" is ${out.pose.type}; the contract is float32`);
    const per = pose ? pose.length / frames : 0;
    if (pose && per !== 16 && per !== 3) throw new SourceError('MODEL_SHAPE', `output "pose" has ${per} values per frame; the contract is 16 (4x4) or 3 (yaw, pitch, roll)`);
    for (let i = 0; i < bs.length; i++)
      if (!Number.isFinite(bs[i])) {
        const k = i % NUM_BLENDSHAPES;
        throw new SourceError('NON_FINITE_OUTPUT', `output "${bsName}" is ${bs[i]} at row ${(i - k) / NUM_BLENDSHAPES}, score ${k} (${BLENDSHAPE_NAMES[k]}): the model must give finite values; nothing was driven`);
      }
    if (pose)
      for (let i = 0; i < pose.length; i++)
        if (!Number.isFinite(pose[i]))
          throw new SourceError('NON_FINITE_OUTPUT', `output "pose" is ${pose[i]} at row ${Math.floor(i / per)}, value ${i % per}: the model must give finite values; nothing was driven`);
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
    if (this.disposed) return;
    this.disposed = true;
    await this.session.release();
  }
}

export interface OnnxSourceOptions {
  /** Rows per second asked of `features` (default 30). */
  fps?: number;
  /**
   * Called with each error while the source runs: a SourceError of the model (MODEL_SHAPE,
   * INFERENCE_FAILED, NON_FINITE_OUTPUT, BAD_INPUT), or whatever `onFrame` threw (e.g. the
   * player's PlayerError). The source has stopped by then, unless the error is a skipped
   * NON_FINITE_OUTPUT. Without it, errors go to console.error.
   */
  onError?: (error: Error) => void;
  /**
   * What a run with NaN or Infinity in its output does: 'stop' (default) stops the source, 'skip'
   * drops that row (it is still reported to onError) and goes on with the next.
   */
  nonFinite?: 'stop' | 'skip';
}

/**
 * A CoefficientSource that asks `features(t)` for the current feature row every 1/fps seconds
 * (undefined skips a tick) and runs the model on it. Ticks never overlap: a slow model drops ticks.
 * An error stops the source and goes to `options.onError` (see OnnxSourceOptions).
 */
export function onnxSource(
  driver: OnnxDriver,
  features: (timeSeconds: number) => Float32Array | undefined,
  options: number | OnnxSourceOptions = {},
): CoefficientSource {
  const o: OnnxSourceOptions = typeof options === 'number' ? { fps: options } : options;
  const fps = o.fps ?? 30;
  if (!(fps > 0 && fps <= 1000)) throw new SourceError('BAD_INPUT', `onnxSource: fps must be in (0, 1000], got ${fps}`);
  const report = o.onError ?? ((e: Error) => console.error('onnxSource:', e));
  let timer: ReturnType<typeof setInterval> | undefined;
  let busy = false;
  const stop = () => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
  };
  return {
    async start(onFrame) {
      stop();
      const t0 = performance.now();
      const tick = async () => {
        if (busy || timer !== self) return;
        const t = (performance.now() - t0) / 1000;
        busy = true;
        try {
          const x = features(t);
          if (!x) return;
          const [frame] = await driver.run(x, 1);
          if (timer === self) onFrame(frame, t);
        } catch (e) {
          if (timer !== self) return; // stopped meanwhile: nobody is listening
          const err = e instanceof Error ? e : new Error(String(e));
          if (!(o.nonFinite === 'skip' && err instanceof SourceError && err.code === 'NON_FINITE_OUTPUT')) stop();
          report(err);
        } finally {
          busy = false;
        }
      };
      const self = (timer = setInterval(tick, 1000 / fps));
    },
    stop,
  };
}
