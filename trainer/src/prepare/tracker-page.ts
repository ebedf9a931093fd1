// The page that runs MediaPipe in headless Chromium: FaceLandmarker (VIDEO mode) and the selfie
// segmentation matte for each frame, returned in batches as one JSON string (one crossing of the
// browser boundary per batch instead of one per frame is about half the time).
export const TRACKER_PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>dyntet tracker</title>
<script src="/selfie/selfie_segmentation.js"></script></head>
<body><canvas id="c"></canvas>
<script type="module">
import { FaceLandmarker, FilesetResolver } from '/tasks-vision/vision_bundle.mjs';

let matteEvery = 1;
let landmarker = null, segmenter = null, lastMatte = null, canvas, ctx;
const prefetch = new Map();

function loadFrame(i) {
  if (!prefetch.has(i)) {
    const img = new Image();
    img.src = '/frames/' + String(i).padStart(6, '0') + '.png';
    prefetch.set(i, img.decode().then(() => img));
  }
  return prefetch.get(i);
}

function b64(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

window.initTracker = async (opts) => {
  const fileset = await FilesetResolver.forVisionTasks('/tasks-vision/wasm');
  landmarker = await FaceLandmarker.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: '/model.task', delegate: 'CPU' },
    runningMode: 'VIDEO',
    numFaces: opts.numFaces,
    minFaceDetectionConfidence: 0.5,
    minFacePresenceConfidence: 0.5,
    minTrackingConfidence: 0.5,
    outputFaceBlendshapes: true,
    outputFacialTransformationMatrixes: true,
  });
  segmenter = new SelfieSegmentation({ locateFile: (f) => '/selfie/' + f });
  segmenter.setOptions({ modelSelection: 0, selfieMode: false });
  segmenter.onResults((r) => { lastMatte = r.segmentationMask; });
  await segmenter.initialize();
  matteEvery = opts.matteEvery;
  canvas = document.getElementById('c');
  canvas.width = opts.matteSize; canvas.height = opts.matteSize;
  ctx = canvas.getContext('2d', { willReadFrequently: true });
  return true;
};

window.trackBatch = async (start, end, fps) => {
  const out = [];
  for (let i = start; i < end; i++) {
    const img = await loadFrame(i);
    // Decode ahead while this frame is being tracked.
    for (let k = 1; k <= 3; k++) if (i + k < end) loadFrame(i + k);
    const t0 = performance.now();
    const r = landmarker.detectForVideo(img, Math.round((i * 1000) / fps));
    const t1 = performance.now();
    let matte = '';
    if (i % matteEvery === 0) {
      lastMatte = null;
      await segmenter.send({ image: img });
      ctx.clearRect(0, 0, canvas.width, canvas.height);
      ctx.drawImage(lastMatte, 0, 0, canvas.width, canvas.height);
      const rgba = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
      const m = new Uint8Array(canvas.width * canvas.height);
      // The matte image carries the person confidence in its red channel.
      for (let p = 0; p < m.length; p++) m[p] = rgba[4 * p];
      matte = b64(m);
    }
    const t2 = performance.now();
    const faces = r.faceLandmarks.map((lm, f) => ({
      landmarks: lm.flatMap((p) => [p.x, p.y, p.z]),
      blendshapes: r.faceBlendshapes[f] ? r.faceBlendshapes[f].categories.map((c) => [c.categoryName, c.score]) : [],
      pose: r.facialTransformationMatrixes[f] ? Array.from(r.facialTransformationMatrixes[f].data) : [],
    }));
    out.push({ index: i, faces, matte, ms: { track: t1 - t0, matte: t2 - t1 } });
    prefetch.delete(i);
  }
  return JSON.stringify(out);
};
</script></body></html>`;
