// The gallery: an index of avatars (the embedded default, ?src=URL, dropped files) and an avatar
// page with clip playback, blendshape and head-angle sliders, webcam driving, driving from a video
// file through an ONNX model, an FPS / frame-time line and the asset's size breakdown. Plain DOM,
// no framework; bundled by demos/build.mjs with rollup. The webcam, face-tracker and ONNX code is
// imported only when its button is pressed.
//
// For tests and the console the avatar canvas carries data-frames (frames the GPU has finished),
// data-driven (live frames driven so far) and data-shown (the last driven frame the GPU has
// finished; a screenshot taken once data-shown equals data-driven shows that frame).
import { Player, BLENDSHAPE_NAMES, decodeAsset } from '../../sdk/dist/index.js';
import { poseFromEuler, neutralFrame } from '../../sdk/dist/sources.js';

const params = new URLSearchParams(location.search);
const SIZE = Number(params.get('size')) || 256;
/** id -> { name, bytes: Uint8Array, url?: string } */
const avatars = new Map();
const app = document.getElementById('app');
const errorBox = document.getElementById('error');
const statusBox = document.getElementById('status');
let current = null; // { player, stop() } of the page on show

function showError(message) {
  errorBox.textContent = message;
  errorBox.hidden = false;
}
function clearError() { errorBox.hidden = true; errorBox.textContent = ''; }
function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v; else e.setAttribute(k, v);
  }
  for (const c of children) e.append(c);
  return e;
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`could not download ${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** Validates bytes as a .dyntet before they join the index, so a bad file never breaks a page. */
async function addAvatar(id, name, bytes, url) {
  const asset = await decodeAsset(bytes); // throws AssetError with a readable message
  avatars.set(id, { name: asset.metadata?.name || name, bytes, url, asset });
}

function disposeCurrent() {
  current?.stop();
  current = null;
}

async function renderIndex() {
  disposeCurrent();
  app.replaceChildren();
  const cards = el('div', { class: 'cards', id: 'cards' });
  app.append(el('h2', { text: 'Avatars' }), cards);
  const players = [];
  for (const [id, a] of avatars) {
    const canvas = el('canvas', { width: String(Math.min(SIZE, 128)), height: String(Math.min(SIZE, 128)) });
    const card = el('a', { class: 'card', href: `#avatar=${encodeURIComponent(id)}`, 'data-id': id }, canvas, el('div', { text: a.name }));
    cards.append(card);
    // Poster frame: the first frame of the avatar's first clip (its expression and head pose, as
    // trained), or the avatar at rest when it has no clip; rendered once and left there.
    const p = new Player(canvas);
    players.push(p);
    p.load(a.bytes.slice()).then(() => {
      if (p.clips.length) {
        p.play(0);
        p.pause(); // the frame already scheduled shows time 0
      }
      p.renderFrame();
      card.setAttribute('data-ready', '1');
    }).catch((e) => card.append(el('div', { class: 'card-error', text: `error: ${e.message}` })));
  }
  current = { player: null, stop: () => players.forEach((p) => p.dispose()) };
  statusBox.textContent = `${avatars.size} avatar${avatars.size === 1 ? '' : 's'}`;

  // More avatars: a file from disk (or dropped anywhere), or a URL.
  const file = el('input', { type: 'file', id: 'open-file', accept: '.dyntet' });
  file.addEventListener('change', () => openFiles(file.files));
  const url = el('input', { type: 'url', id: 'open-url', placeholder: 'https://example.org/avatar.dyntet', size: '40', 'aria-label': 'avatar URL' });
  const form = el('form', { id: 'open-url-form' }, url, el('button', { type: 'submit', text: 'open URL' }));
  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const src = url.value.trim();
    if (!src) return;
    try {
      await addAvatar(src, src.split('/').pop() || src, await fetchBytes(src), src);
      clearError();
      location.hash = `#avatar=${encodeURIComponent(src)}`;
    } catch (err) {
      showError(`${src} is not a usable .dyntet avatar: ${err.message}`);
    }
  });
  app.append(el('div', { class: 'panel', id: 'add' }, el('h3', { text: 'Add an avatar' }),
    el('label', { text: 'open a .dyntet file ' }, file), form,
    el('p', { class: 'note', text: 'Files stay in this tab: nothing is uploaded.' })));
}

const CHUNK_NAMES = {
  META: 'metadata (JSON)', GEOM: 'canonical SDF + elastic scale', ACTV: 'active vertices', DEFM: 'deformation MLP',
  COND: 'condition encoder', HASH: 'hash-grid tables', TEXM: 'texture MLP', CLIP: 'clip tracks (coefficients)',
  BAKE: 'baked clip deltas', PLAT: 'background plate',
};
/** Bytes per chunk type as stored in the file, from its chunk table (docs/asset-format.md). */
function storedSizes(bytes) {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const count = v.getUint32(16, true);
  const table = Number(v.getBigUint64(24, true));
  const sizes = new Map();
  for (let i = 0; i < count; i++) {
    const e = table + i * 32;
    const type = String.fromCharCode(...bytes.subarray(e, e + 4));
    sizes.set(type, (sizes.get(type) ?? 0) + Number(v.getBigUint64(e + 16, true)));
  }
  return sizes;
}
/** The asset's size breakdown: each part as stored in the file (share of it) and as decoded for the GPU. */
function sizeTable(a) {
  const t = a.asset;
  const decoded = {
    GEOM: t.sdf.byteLength + t.elasticScale.byteLength, ACTV: t.active.byteLength, DEFM: t.deformParams.byteLength,
    COND: t.conditionParams.byteLength, HASH: t.hashTables.byteLength, TEXM: t.textureParams.byteLength,
    CLIP: t.clips.reduce((s, c) => s + c.coefficients.byteLength, 0),
    BAKE: t.baked.reduce((s, b) => s + (b.basis ? b.basis.mean.byteLength + b.basis.vectors.byteLength + b.basis.weights.byteLength : b.deltas.byteLength), 0),
    PLAT: t.plate ? t.plate.width * t.plate.height * 4 : 0,
  };
  const total = a.bytes.byteLength;
  const fmt = (n) => n.toLocaleString('en');
  const table = el('table', { id: 'sizes' }, el('tr', {}, el('th', { text: 'part' }), el('th', { text: 'bytes in the file' }), el('th', { text: 'share' }), el('th', { text: 'decoded' })));
  let chunks = 0;
  for (const [type, n] of [...storedSizes(a.bytes)].sort((x, y) => y[1] - x[1])) {
    chunks += n;
    table.append(el('tr', { 'data-chunk': type }, el('td', { text: CHUNK_NAMES[type] ?? `${type} (unknown to this gallery)` }), el('td', { class: 'n', text: fmt(n) }),
      el('td', { class: 'n', text: `${((100 * n) / total).toFixed(1)}%` }), el('td', { class: 'n', text: type in decoded ? fmt(decoded[type]) : '' })));
  }
  table.append(el('tr', {}, el('td', { text: 'header, chunk table, alignment' }), el('td', { class: 'n', text: fmt(total - chunks) }), el('td', { class: 'n', text: `${((100 * (total - chunks)) / total).toFixed(1)}%` }), el('td')));
  table.append(el('tr', { class: 'total' }, el('td', { text: 'file (as downloaded)' }), el('td', { class: 'n', text: fmt(total) }), el('td', { class: 'n', text: '100%' }), el('td')));
  return table;
}

/** Shows a message in a panel; with a code it is an error: "CODE: message", data-code set, role alert. */
function say(box, text, code) {
  box.textContent = code ? `${code}: ${text}` : text;
  if (code) box.dataset.code = code; else delete box.dataset.code;
  box.setAttribute('role', code ? 'alert' : 'status');
}

/** Values per input row of a model driven from a video: 52 blendshape scores, head yaw, pitch, roll. */
const MODEL_FEATURES = 55;

/** A tracked face (CoefficientFrame) as a model input row; the angles invert poseFromEuler. */
function trackerFeatures(frame) {
  const m = frame.pose;
  const x = new Float32Array(MODEL_FEATURES);
  x.set(frame.blendshapes);
  // poseFromEuler: R = Ry(yaw) Rx(pitch) Rz(roll), column-major; the tracker's matrix may carry a scale.
  const n = Math.hypot(m[8], m[9], m[10]) || 1;
  x[52] = Math.atan2(m[8], m[10]);
  x[53] = Math.asin(Math.max(-1, Math.min(1, -m[9] / n)));
  x[54] = Math.atan2(m[1], m[5]);
  return x;
}

/**
 * Drives the avatar from a video file through an ONNX model: MediaPipe FaceLandmarker reads each
 * new frame of the video, the frame's scores and head angles are the model's input row, and the
 * SDK's onnxSource (ticking 25 times a second) runs the model on each new row and hands the
 * result to `drive`. The model follows @dyntet/player/onnx's contract with F = MODEL_FEATURES.
 * Errors are typed (SourceError, or PlayerError when the player refuses a frame): start() rejects
 * with them (MODEL_LOAD_FAILED, MODEL_SHAPE, INFERENCE_FAILED or NON_FINITE_OUTPUT from the
 * model's first run on a row of zeros, TRACKER_FAILED, BAD_INPUT for the video), and those raised
 * while running (through onnxSource's onError) go to `onError` after the drive stops.
 * `panel.dataset` tells tests what happens: tracked (video time of the last tracked frame), face
 * (whether it had a face), runs (model results that drove the avatar); window.galleryModelDrive
 * holds the last run's input row, its video time and the frame it drove.
 */
function videoModelDrive({ modelFile, videoFile, stage, panel, drive, onError }) {
  let stopped = false;
  let raf = 0;
  let url = '';
  let video = null, landmarker = null, driver = null, source = null;
  const release = () => {
    source?.stop();
    source = null;
    cancelAnimationFrame(raf);
    landmarker?.close();
    landmarker = null;
    driver?.dispose().catch(() => {});
    driver = null;
    video?.pause();
    video?.remove();
    video = null;
    if (url) URL.revokeObjectURL(url);
    url = '';
  };
  function stop() {
    stopped = true;
    release();
  }
  async function start() {
    // Loaded only now: pages that never press the button never download tracker or runtime.
    const [{ OnnxDriver, onnxSource, SourceError }, { toFrame }, vision] = await Promise.all([
      import('../../sdk/dist/onnx.js'), import('../../sdk/dist/webcam.js'), import('@mediapipe/tasks-vision'),
    ]);
    const bytes = new Uint8Array(await modelFile.arrayBuffer());
    if (stopped) return release();
    driver = await OnnxDriver.create(bytes, { wasmPaths: new URL('ort/', location.href).href });
    if (stopped) return release();
    // The contract, checked before anything runs: one row of MODEL_FEATURES values in, 52 scores out.
    await driver.run(new Float32Array(MODEL_FEATURES), 1);
    try {
      const fileset = await vision.FilesetResolver.forVisionTasks(new URL('mediapipe/wasm', location.href).href);
      landmarker = await vision.FaceLandmarker.createFromOptions(fileset, {
        baseOptions: { modelAssetPath: new URL('mediapipe/face_landmarker.task', location.href).href },
        runningMode: 'VIDEO', numFaces: 1, outputFaceBlendshapes: true, outputFacialTransformationMatrixes: true,
      });
    } catch (e) {
      throw new SourceError('TRACKER_FAILED', `the face tracker did not start (${e.message}): the gallery needs its mediapipe/ folder (demos/build.mjs copies it)`);
    }
    if (stopped) return release();
    video = el('video', { id: 'drive-video-view', width: String(SIZE), controls: '', loop: '', muted: '', playsinline: '' });
    video.muted = true;
    url = URL.createObjectURL(videoFile);
    video.src = url;
    stage.append(video);
    await new Promise((ok, fail) => {
      video.addEventListener('loadeddata', ok, { once: true });
      video.addEventListener('error', () => fail(new SourceError('BAD_INPUT', `${videoFile.name} is not a video this browser can decode (${video?.error?.message || 'media error'}): use an H.264 MP4 or a WebM file`)), { once: true });
    });
    if (stopped) return release();
    await video.play();

    // Each new video frame is tracked once (on seeking too, where no animation frame may come
    // soon while the GPU is busy), and each tracked face runs the model once: the avatar's
    // condition window then spans consecutive video frames, as in training.
    let row; // { x, time } of the last tracked frame with a face
    let tracked = -1;
    const track = () => {
      if (stopped || video.readyState < 2 || video.seeking || video.currentTime === tracked) return;
      tracked = video.currentTime;
      const f = toFrame(landmarker.detectForVideo(video, performance.now()));
      if (f) row = { x: trackerFeatures(f), time: tracked };
      panel.dataset.tracked = String(tracked);
      panel.dataset.face = f ? '1' : '0';
    };
    const loop = () => {
      track();
      if (!stopped) raf = requestAnimationFrame(loop);
    };
    raf = requestAnimationFrame(loop);
    video.addEventListener('seeked', track);
    let fed; // the row of the run in flight (onnxSource's ticks never overlap)
    let runs = 0;
    // A failure while running (the model, or drive() refusing its frame) stops the source and comes here.
    const failed = (err) => {
      if (stopped) return;
      stop();
      onError(err);
    };
    source = onnxSource(driver, () => (row && row !== fed ? (fed = row).x : undefined), { fps: 25, onError: failed });
    await source.start((frame) => {
      drive(frame);
      window.galleryModelDrive = { input: fed.x, videoTime: fed.time, output: frame };
      panel.dataset.runs = String(++runs);
    });
  }
  return { start, stop };
}

async function renderAvatar(id) {
  disposeCurrent();
  const a = avatars.get(id);
  if (!a) { showError(`no avatar "${id}" in this gallery`); return renderIndex(); }
  app.replaceChildren();
  const canvas = el('canvas', { width: String(SIZE), height: String(SIZE), id: 'avatar' });
  // The frame-time line sits under the frame, never over it: text drawn on the avatar would
  // change its pixels with every frame.
  const overlay = el('div', { id: 'overlay', text: '-- fps' });
  overlay.style.width = `${SIZE}px`;
  const stage = el('div', { class: 'stage' }, el('div', { class: 'view' }, canvas, overlay));
  // The asset names its source video (metadata.source.video, what `dyntet-train export` writes):
  // shown beside the avatar, in step with its clip, when it lies next to the avatar's URL.
  const meta = a.asset.metadata ?? {};
  const srcVideo = meta.source?.video ?? meta.source_video;
  let sourceVideo = null;
  if (typeof srcVideo === 'string' && srcVideo && a.url) {
    const name = srcVideo.split(/[\\/]/).pop();
    const v = el('video', { muted: '', loop: '', playsinline: '', width: String(SIZE), height: String(SIZE), preload: 'auto', src: new URL(name, new URL(a.url, location.href)).href, id: 'source-video' });
    v.muted = true;
    const box = el('div', { class: 'view', id: 'source-view' }, v, el('div', { class: 'caption', text: `source video: ${name}` }));
    v.addEventListener('error', () => { box.remove(); sourceVideo = null; });
    stage.append(box);
    sourceVideo = v;
  }
  const clipsPanel = el('div', { class: 'panel', id: 'clips' }, el('h3', { text: 'Clips' }));
  const webcamPanel = el('div', { class: 'panel' }, el('h3', { text: 'Webcam' }));
  const webcamMsg = el('p', { id: 'webcam-message', role: 'status' });
  const modelPanel = el('div', { class: 'panel', id: 'model-drive' }, el('h3', { text: 'Video through an ONNX model' }));
  const modelMsg = el('p', { id: 'onnx-message', role: 'status' });
  const slidersPanel = el('div', { class: 'sliders panel', id: 'sliders' });
  // The sliders sit beside the avatar, so that what they do is in sight.
  stage.append(el('div', { class: 'drive' }, el('h3', { text: 'Drive: 52 blendshapes, head angles (degrees)' }), slidersPanel));
  app.append(el('h2', { text: a.name }), stage, clipsPanel, webcamPanel, modelPanel, el('div', { class: 'panel' }, el('h3', { text: 'Size' }), sizeTable(a)));

  const player = new Player(canvas);
  player.loop = true; // clips replay until the visitor drives the avatar
  let webcam = null;
  let modelDrive = null;
  const stopSources = () => {
    webcam?.stop();
    webcam = null;
    modelDrive?.stop();
    modelDrive = null;
  };
  current = { player, stop: () => { stopSources(); player.dispose(); } };
  window.galleryPlayer = player; // for tests and the console

  // Every live frame (sliders, webcam, model) goes through here.
  let live = false;
  let driven = 0;
  canvas.dataset.driven = canvas.dataset.shown = '0';
  const driveLive = (f) => {
    player.drive(f);
    if (!live) sourceVideo?.pause();
    live = true;
    canvas.dataset.driven = String(++driven);
  };

  // FPS / frame-time line over the last second of frames the GPU has finished. The player
  // submits a frame per animation frame whether or not the GPU has finished the previous ones
  // (on a slow GPU, such as SwiftShader, work queues up seconds deep), so a frame counts when the
  // GPU is done with it, not when it was submitted.
  const times = [];
  let previous = 0;
  let shown = 0;
  const frameDone = (seq) => {
    const now = performance.now();
    times.push(now);
    while (times.length && now - times[0] > 1000) times.shift();
    // Slower than 1 fps, the window holds one frame: the time since the previous one says more.
    const ms = times.length > 1 ? (times.at(-1) - times[0]) / (times.length - 1) : previous ? now - previous : 0;
    previous = now;
    overlay.textContent = `${times.length} fps, ${ms.toFixed(0)} ms/frame`;
    canvas.dataset.frames = String((Number(canvas.dataset.frames) || 0) + 1);
    if (seq > shown) canvas.dataset.shown = String((shown = seq));
  };
  player.addEventListener('frame', () => {
    const seq = live ? driven : 0;
    const device = player.gpuDevice;
    if (device) device.queue.onSubmittedWorkDone().then(() => frameDone(seq), () => {});
    else frameDone(seq);
  });
  player.addEventListener('error', (e) => showError(e.error?.message ?? String(e.error)));

  try {
    await player.load(a.bytes.slice());
  } catch (e) {
    showError(`could not show ${a.name}: ${e.message}`);
    return;
  }
  // The source video follows the clip's clock: started and paused with it, nudged back when they drift apart.
  const syncVideo = (playing) => {
    const v = sourceVideo;
    if (!v || !(v.duration > 0)) return;
    const want = player.currentTime % v.duration;
    if (Math.abs(v.currentTime - want) > 0.15) v.currentTime = want;
    if (playing && v.paused) v.play().catch(() => {});
    if (!playing && !v.paused) v.pause();
  };
  player.addEventListener('frame', () => { if (!live) syncVideo(!player.paused); });
  player.addEventListener('pause', () => syncVideo(false));
  const playClip = (name) => {
    stopSources();
    live = false;
    player.play(name);
    syncVideo(true);
  };
  for (const c of player.clips) {
    const b = el('button', { 'data-clip': c.name, text: `play ${c.name} (${c.duration.toFixed(1)} s)` });
    b.addEventListener('click', () => playClip(c.name));
    clipsPanel.append(b);
  }
  if (player.clips.length === 0) clipsPanel.append(el('p', { text: 'this avatar has no baked clips' }));
  else {
    const pause = el('button', { id: 'pause', text: 'pause' });
    pause.addEventListener('click', () => player.pause());
    clipsPanel.append(pause);
  }

  // Sliders: 52 blendshapes and head yaw/pitch/roll in degrees, driving the avatar live. The
  // blendshapes start at the avatar's rest expression (its clip's median): a trained avatar has
  // never seen all-zero blendshapes.
  const frame = neutralFrame();
  const rest = player.restBlendshapes();
  frame.blendshapes.set(rest);
  const angles = { yaw: 0, pitch: 0, roll: 0 };
  const drive = () => {
    frame.pose = poseFromEuler(angles.yaw * Math.PI / 180, angles.pitch * Math.PI / 180, angles.roll * Math.PI / 180);
    driveLive(frame);
  };
  const label = (v) => String(Math.round(v * 100) / 100);
  const addSlider = (name, min, max, step, start, onInput) => {
    const input = el('input', { type: 'range', min: String(min), max: String(max), step: String(step), value: label(start), 'data-name': name, 'aria-label': name });
    input.dataset.rest = String(start);
    const out = el('span', { text: label(start) });
    input.addEventListener('input', () => { out.textContent = input.value; onInput(Number(input.value)); drive(); });
    slidersPanel.append(el('label', { text: name }), input, out);
  };
  const reset = el('button', { id: 'reset', text: 'reset to rest' });
  reset.addEventListener('click', () => {
    stopSources();
    frame.blendshapes.set(rest);
    angles.yaw = angles.pitch = angles.roll = 0;
    for (const i of slidersPanel.querySelectorAll('input')) { i.value = label(Number(i.dataset.rest)); i.nextElementSibling.textContent = label(Number(i.dataset.rest)); }
    drive();
  });
  slidersPanel.append(reset, el('span'), el('span'));
  for (const k of ['yaw', 'pitch', 'roll']) addSlider(`head ${k}`, -45, 45, 1, 0, (v) => (angles[k] = v));
  BLENDSHAPE_NAMES.forEach((n, i) => { if (i > 0) addSlider(n, 0, 1, 0.01, rest[i], (v) => (frame.blendshapes[i] = v)); });

  const camButton = el('button', { id: 'webcam', text: 'drive from my webcam' });
  camButton.addEventListener('click', async () => {
    stopSources();
    say(webcamMsg, 'starting the camera...');
    try {
      // Loaded only now: pages that never press this button never download MediaPipe.
      const { webcamSource } = await import('../../sdk/dist/webcam.js');
      webcam = webcamSource({ wasmBase: new URL('mediapipe/wasm', location.href).href, modelUrl: new URL('mediapipe/face_landmarker.task', location.href).href });
      await webcam.start(driveLive);
      say(webcamMsg, 'driving from the webcam');
    } catch (e) {
      webcam = null;
      say(webcamMsg, e.code === 'CAMERA_DENIED' ? 'Camera permission was refused. Allow the camera for this page (the camera icon in the address bar) and press the button again.'
        : e.code === 'NO_CAMERA' ? `${e.message[0].toUpperCase()}${e.message.slice(1)}. The sliders and the ONNX model still drive the avatar.`
          : `The webcam could not drive the avatar: ${e.message}`, e.code ?? 'FAILED');
    }
  });
  webcamPanel.append(camButton, webcamMsg);

  // A video file of a face, through an ONNX model of the visitor's choice.
  const modelInput = el('input', { type: 'file', id: 'onnx-model', accept: '.onnx' });
  const videoInput = el('input', { type: 'file', id: 'drive-video', accept: 'video/*' });
  const modelStart = el('button', { id: 'onnx-start', text: 'drive through the model' });
  const modelStop = el('button', { id: 'onnx-stop', text: 'stop' });
  modelStart.addEventListener('click', async () => {
    stopSources();
    const modelFile = modelInput.files?.[0];
    const videoFile = videoInput.files?.[0];
    if (!modelFile || !videoFile) return say(modelMsg, 'choose an ONNX model (.onnx) and a video of a face first', 'NO_INPUT');
    say(modelMsg, 'loading the model and the face tracker...');
    const session = videoModelDrive({ modelFile, videoFile, stage, panel: modelPanel, drive: driveLive,
      onError: (e) => { if (modelDrive === session) modelDrive = null; say(modelMsg, e.message, e.code ?? 'FAILED'); } });
    modelDrive = session;
    try {
      await session.start();
      if (modelDrive === session) say(modelMsg, `driving from ${videoFile.name} through ${modelFile.name}`);
    } catch (e) {
      session.stop();
      if (modelDrive !== session) return; // replaced or stopped meanwhile
      modelDrive = null;
      say(modelMsg, e.message, e.code ?? 'FAILED');
    }
  });
  modelStop.addEventListener('click', () => { stopSources(); say(modelMsg, 'stopped'); });
  modelPanel.append(
    el('p', { class: 'note', text: `The face tracker reads the video; the model gets one row of ${MODEL_FEATURES} numbers per frame (the 52 blendshape scores, then head yaw, pitch and roll in radians) and returns 52 blendshape scores and optionally a pose, as @dyntet/player/onnx documents.` }),
    el('label', { text: 'model ' }, modelInput), el('label', { text: 'video ' }, videoInput), modelStart, modelStop, modelMsg);

  if (player.clips.length) playClip(player.clips[0].name); else drive();
  statusBox.textContent = a.name;
}

let keepNextError = false; // a message of openFiles that the route it triggers must not clear
function route(keepError = false) {
  if (keepError !== true && !keepNextError) clearError();
  keepNextError = false;
  const m = /^#avatar=(.+)$/.exec(location.hash);
  return m ? renderAvatar(decodeURIComponent(m[1])) : renderIndex();
}

/**
 * Files dropped on the page or picked with the file button join the index; a bad one gives a
 * readable error and changes nothing else. The last good one opens.
 */
async function openFiles(files) {
  let last = null;
  const bad = [];
  for (const f of files ?? []) {
    try {
      await addAvatar(`file:${f.name}`, f.name, new Uint8Array(await f.arrayBuffer()));
      last = `file:${f.name}`;
    } catch (err) {
      bad.push(`${f.name} is not a usable .dyntet avatar: ${err.message}`);
    }
  }
  if (bad.length) showError(bad.join('; '));
  else clearError();
  if (!last) return;
  const hash = `#avatar=${encodeURIComponent(last)}`;
  if (location.hash === hash) await route(bad.length > 0);
  else {
    keepNextError = bad.length > 0;
    location.hash = hash;
  }
}
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', (e) => {
  e.preventDefault();
  openFiles(e.dataTransfer?.files);
});
window.addEventListener('hashchange', route);

async function boot() {
  try {
    // ?default=URL swaps the default avatar (the tests use the small synthetic head).
    const url = params.get('default') ?? 'avatars/default.dyntet';
    await addAvatar('default', 'default avatar', await fetchBytes(url), url);
  } catch (e) {
    showError(`the default avatar did not load: ${e.message}`);
  }
  const src = params.get('src');
  if (src) {
    try { await addAvatar(src, src.split('/').pop(), await fetchBytes(src), src); }
    catch (e) { showError(`${src} is not a usable .dyntet avatar: ${e.message}`); }
  }
  await route();
  document.body.dataset.ready = '1';
}
boot();
