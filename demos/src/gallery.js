// The gallery: an index of avatars (the embedded default, ?src=URL, dropped files) and an avatar
// page with clip playback, blendshape and head-angle sliders, webcam driving, an FPS overlay and
// the asset's size breakdown. Plain DOM, no framework; bundled by demos/build.mjs with rollup.
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
    // Poster frame: the first frame of the avatar, rendered once and left paused.
    const p = new Player(canvas);
    players.push(p);
    p.load(a.bytes.slice()).then(() => card.setAttribute('data-ready', '1'), (e) => card.append(el('div', { text: `error: ${e.message}` })));
  }
  current = { player: null, stop: () => players.forEach((p) => p.dispose()) };
  statusBox.textContent = `${avatars.size} avatar(s)`;
}

function sizeTable(a) {
  const t = a.asset;
  const rows = [
    ['canonical SDF + elastic scale', t.sdf.byteLength + t.elasticScale.byteLength],
    ['active vertices', t.active.byteLength],
    ['deformation MLP', t.deformParams.byteLength],
    ['condition encoder', t.conditionParams.byteLength],
    ['hash-grid tables', t.hashTables.byteLength],
    ['texture MLP', t.textureParams.byteLength],
    ['clips (tracks + baked)', t.clips.reduce((s, c) => s + (c.coefficients?.byteLength ?? 0), 0) + t.baked.reduce((s, b) => s + (b.deltas?.byteLength ?? 0), 0)],
    ['background plate', t.plate?.data?.byteLength ?? 0],
  ];
  const table = el('table', { id: 'sizes' }, el('tr', {}, el('th', { text: 'part' }), el('th', { text: 'decoded bytes' })));
  for (const [k, v] of rows) table.append(el('tr', {}, el('td', { text: k }), el('td', { class: 'n', text: v.toLocaleString('en') })));
  table.append(el('tr', {}, el('td', { text: 'file (as downloaded)' }), el('td', { class: 'n', text: a.bytes.byteLength.toLocaleString('en') })));
  return table;
}

async function renderAvatar(id) {
  disposeCurrent();
  const a = avatars.get(id);
  if (!a) { showError(`no avatar "${id}" in this gallery`); return renderIndex(); }
  app.replaceChildren();
  const canvas = el('canvas', { width: String(SIZE), height: String(SIZE), id: 'avatar' });
  const overlay = el('div', { id: 'overlay', text: '-- fps' });
  const stage = el('div', { class: 'stage' }, el('div', { class: 'view' }, canvas, overlay));
  const srcVideo = a.asset.metadata?.source_video;
  if (typeof srcVideo === 'string' && a.url) {
    // The asset names its source video: show it beside the avatar when the server has it.
    const v = el('video', { muted: '', loop: '', width: String(SIZE), src: new URL(srcVideo, new URL(a.url, location.href)).href, id: 'source-video' });
    v.addEventListener('error', () => v.remove());
    stage.append(v);
  }
  const clipsPanel = el('div', { class: 'panel', id: 'clips' }, el('h3', { text: 'Clips' }));
  const webcamPanel = el('div', { class: 'panel' }, el('h3', { text: 'Webcam' }));
  const webcamMsg = el('p', { id: 'webcam-message', role: 'status' });
  const slidersPanel = el('div', { class: 'sliders panel', id: 'sliders' });
  app.append(el('h2', { text: a.name }), stage, clipsPanel, webcamPanel, el('div', { class: 'panel' }, el('h3', { text: 'Size' }), sizeTable(a)), el('h3', { text: 'Drive' }), slidersPanel);

  const player = new Player(canvas);
  player.loop = true; // clips replay until the visitor drives the avatar
  let webcam = null;
  current = { player, stop: () => { webcam?.stop(); player.dispose(); } };
  window.galleryPlayer = player; // for tests and the console

  // FPS / frame-time overlay over the last second of rendered frames.
  const times = [];
  player.addEventListener('frame', () => {
    const now = performance.now();
    times.push(now);
    while (times.length && now - times[0] > 1000) times.shift();
    const ms = times.length > 1 ? (times.at(-1) - times[0]) / (times.length - 1) : 0;
    overlay.textContent = `${times.length} fps, ${ms.toFixed(1)} ms/frame`;
    canvas.dataset.frames = String((Number(canvas.dataset.frames) || 0) + 1);
  });
  player.addEventListener('error', (e) => showError(e.error?.message ?? String(e.error)));

  try {
    await player.load(a.bytes.slice());
  } catch (e) {
    showError(`could not show ${a.name}: ${e.message}`);
    return;
  }
  for (const c of player.clips) {
    const b = el('button', { 'data-clip': c.name, text: `play ${c.name} (${c.duration.toFixed(1)} s)` });
    b.addEventListener('click', () => { player.play(c.name); document.getElementById('source-video')?.play(); });
    clipsPanel.append(b);
  }
  if (player.clips.length === 0) clipsPanel.append(el('p', { text: 'this avatar has no baked clips' }));

  // Sliders: 52 blendshapes and head yaw/pitch/roll in degrees, driving the avatar live.
  const frame = neutralFrame();
  const angles = { yaw: 0, pitch: 0, roll: 0 };
  const drive = () => {
    frame.pose = poseFromEuler(angles.yaw * Math.PI / 180, angles.pitch * Math.PI / 180, angles.roll * Math.PI / 180);
    player.drive(frame);
  };
  const addSlider = (name, min, max, step, onInput) => {
    const input = el('input', { type: 'range', min: String(min), max: String(max), step: String(step), value: '0', 'data-name': name, 'aria-label': name });
    const out = el('span', { text: '0' });
    input.addEventListener('input', () => { out.textContent = input.value; onInput(Number(input.value)); drive(); });
    slidersPanel.append(el('label', { text: name }), input, out);
  };
  for (const k of ['yaw', 'pitch', 'roll']) addSlider(`head ${k}`, -45, 45, 1, (v) => (angles[k] = v));
  BLENDSHAPE_NAMES.forEach((n, i) => { if (i > 0) addSlider(n, 0, 1, 0.01, (v) => (frame.blendshapes[i] = v)); });

  const camButton = el('button', { id: 'webcam', text: 'drive from my webcam' });
  camButton.addEventListener('click', async () => {
    webcamMsg.textContent = 'starting the camera...';
    try {
      // Loaded only now: pages that never press this button never download MediaPipe.
      const { webcamSource } = await import('../../sdk/dist/webcam.js');
      webcam?.stop();
      webcam = webcamSource({ wasmBase: new URL('mediapipe/wasm', location.href).href, modelUrl: new URL('mediapipe/face_landmarker.task', location.href).href });
      await webcam.start((f) => player.drive(f));
      webcamMsg.textContent = 'driving from the webcam';
    } catch (e) {
      webcam = null;
      webcamMsg.textContent = e.code === 'CAMERA_DENIED' ? 'Camera permission was refused. Allow the camera for this page to drive the avatar.'
        : e.code === 'NO_CAMERA' ? `No camera found: ${e.message}` : `The webcam could not drive the avatar: ${e.message}`;
    }
  });
  webcamPanel.append(camButton, webcamMsg);

  if (player.clips.length) player.play(0); else drive();
  statusBox.textContent = a.name;
}

function route() {
  clearError();
  const m = /^#avatar=(.+)$/.exec(location.hash);
  return m ? renderAvatar(decodeURIComponent(m[1])) : renderIndex();
}

// Any file dropped on the page joins the index; a bad one gives a readable error and changes nothing else.
document.addEventListener('dragover', (e) => e.preventDefault());
document.addEventListener('drop', async (e) => {
  e.preventDefault();
  for (const f of e.dataTransfer?.files ?? []) {
    try {
      await addAvatar(`file:${f.name}`, f.name, new Uint8Array(await f.arrayBuffer()));
      clearError();
      location.hash = `#avatar=${encodeURIComponent(`file:${f.name}`)}`;
      await route();
    } catch (err) {
      showError(`${f.name} is not a usable .dyntet avatar: ${err.message}`);
    }
  }
});
window.addEventListener('hashchange', route);

async function boot() {
  try {
    await addAvatar('default', 'default avatar', await fetchBytes('avatars/default.dyntet'), 'avatars/default.dyntet');
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
