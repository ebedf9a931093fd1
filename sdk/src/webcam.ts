/**
 * `@dyntet/player/webcam`: live coefficients from the visitor's camera through MediaPipe
 * FaceLandmarker, in the training convention (52 blendshape scores in the tracker's order, the
 * facial transformation matrix as the pose). `@mediapipe/tasks-vision` is imported only when a
 * webcam source starts, so pages that never use it never download it.
 */
import { NUM_BLENDSHAPES, POSE_SIZE, type CoefficientFrame } from './coefficients.js';
import { SourceError, type CoefficientSource } from './sources/source.js';

export { SourceError } from './sources/source.js';
export type { CoefficientSource } from './sources/source.js';

export interface WebcamOptions {
  /** URL of the folder holding tasks-vision's wasm files (its package's `wasm/` folder). */
  wasmBase: string;
  /** URL of face_landmarker.task. */
  modelUrl: string;
  /** Video element to show the camera in (one is created, hidden, when absent). */
  video?: HTMLVideoElement;
  /** Camera constraints (default 640x480, front camera). */
  constraints?: MediaStreamConstraints;
}

/** A CoefficientSource that tracks the first face seen by the camera, once per video frame. */
export function webcamSource(options: WebcamOptions): CoefficientSource {
  let stream: MediaStream | undefined;
  let raf = 0;
  let landmarker: { detectForVideo(v: HTMLVideoElement, t: number): unknown; close(): void } | undefined;
  let stopped = false;
  return {
    async start(onFrame) {
      stopped = false;
      if (!globalThis.navigator?.mediaDevices?.getUserMedia)
        throw new SourceError('NO_CAMERA', 'this browser exposes no camera API (navigator.mediaDevices); use a secure (https or localhost) page in a current browser');
      try {
        stream = await navigator.mediaDevices.getUserMedia(options.constraints ?? { video: { width: 640, height: 480, facingMode: 'user' }, audio: false });
      } catch (e) {
        const name = (e as DOMException)?.name;
        if (name === 'NotAllowedError' || name === 'SecurityError')
          throw new SourceError('CAMERA_DENIED', 'camera permission was refused: allow the camera for this page and try again');
        throw new SourceError('NO_CAMERA', name === 'NotFoundError' || name === 'OverconstrainedError'
          ? `no camera was found (${name}): connect one and try again`
          : name === 'NotReadableError' ? 'the camera could not be opened (NotReadableError): another app may be using it; close it and try again'
            : `no usable camera (${name ?? e}): connect a camera or close other apps using it`);
      }
      const video = options.video ?? document.createElement('video');
      video.muted = true;
      video.playsInline = true;
      video.srcObject = stream;
      await video.play();
      try {
        const vision = await import('@mediapipe/tasks-vision');
        const fileset = await vision.FilesetResolver.forVisionTasks(options.wasmBase);
        landmarker = await vision.FaceLandmarker.createFromOptions(fileset, {
          baseOptions: { modelAssetPath: options.modelUrl },
          runningMode: 'VIDEO',
          numFaces: 1,
          outputFaceBlendshapes: true,
          outputFacialTransformationMatrixes: true,
        });
      } catch (e) {
        this.stop();
        throw new SourceError('TRACKER_FAILED', `the face tracker did not start (${(e as Error).message}): check wasmBase and modelUrl`);
      }
      const t0 = performance.now();
      const tick = () => {
        if (stopped || !landmarker) return;
        if (video.readyState >= 2) {
          const now = performance.now();
          const frame = toFrame(landmarker.detectForVideo(video, now));
          if (frame) onFrame(frame, (now - t0) / 1000);
        }
        raf = requestAnimationFrame(tick);
      };
      raf = requestAnimationFrame(tick);
    },
    stop() {
      stopped = true;
      cancelAnimationFrame(raf);
      landmarker?.close();
      landmarker = undefined;
      stream?.getTracks().forEach((t) => t.stop());
      stream = undefined;
    },
  };
}

/** FaceLandmarkerResult of one face to a coefficient frame; undefined when no face was found. */
export function toFrame(result: unknown): CoefficientFrame | undefined {
  const r = result as {
    faceBlendshapes?: { categories: { index: number; score: number }[] }[];
    facialTransformationMatrixes?: { data: ArrayLike<number> }[];
  };
  const cats = r?.faceBlendshapes?.[0]?.categories;
  const m = r?.facialTransformationMatrixes?.[0]?.data;
  if (!cats || !m || m.length !== POSE_SIZE) return undefined;
  const blendshapes = new Float32Array(NUM_BLENDSHAPES);
  // The tracker's category index is the position in BLENDSHAPE_NAMES (same model, same order).
  for (const c of cats) if (c.index >= 0 && c.index < NUM_BLENDSHAPES) blendshapes[c.index] = c.score;
  return { blendshapes, pose: Float32Array.from(m) };
}
