/**
 * The page: reads the URL's parameters, loads the models behind the loading bar, opens the mode asked
 * for (live camera or photo), and exposes `window.cleanplate` (speed figures, the composite's
 * MediaStream) to scripts on this page. No core module is imported here: OpenCV.js and TensorFlow.js
 * live in the two workers, so the page's thread stays free for the camera and the drawing.
 */
import { startEngine, type Engine } from './engine.js';
import { liveSettings, LiveMode, priorSettings, type LiveStats } from './live.js';
import { readParams, type Params } from './params.js';
import { PhotoMode } from './photo-mode.js';
import { Status } from './status.js';

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;

export interface CleanplateApi {
  params: Params;
  /** Milliseconds from the page's start until both workers had their models. */
  modelLoadMs?: number;
  backend?: Engine['backend'];
  live?: LiveMode;
  /** The composite as a MediaStream (canvas.captureStream): a camera source for other code on this page. */
  readonly stream?: MediaStream;
  /** What the camera sends (for scripts that want the raw frames too). */
  readonly camera?: MediaStream;
  stats(): LiveStats | undefined;
  /** Photo mode's last report (the CLI's report.json) and metrics. */
  photo?: PhotoMode;
}

declare global {
  interface Window { cleanplate: CleanplateApi }
}

const params = readParams(location.search);
const status = new Status($('status'));
const api: CleanplateApi = {
  params,
  stats: () => api.live?.stats(),
  get stream() { return live?.compositeStream; },
  get camera() { return live?.camera; },
};
window.cleanplate = api;

let live: LiveMode | undefined;
let mode: Params['mode'] = params.mode;

/** Tabs: click, or arrow keys between them (the WAI-ARIA tabs pattern). */
function selectTab(next: Params['mode'], focus: boolean): void {
  mode = next;
  for (const m of ['live', 'photo'] as const) {
    const tab = $(`tab-${m}`);
    tab.setAttribute('aria-selected', String(m === next));
    tab.tabIndex = m === next ? 0 : -1;
    $(m).hidden = m !== next;
    if (m === next && focus) tab.focus();
  }
  const url = new URL(location.href);
  url.searchParams.set('mode', next);
  history.replaceState(null, '', url);
}

function showMode(next: Params['mode'], focus = false): void {
  if (next === mode) return;
  selectTab(next, focus);
  if (!live) return;
  live.active = next === 'live';
  // The camera is on only while live mode shows.
  if (next === 'live') void live.startCamera();
  else { live.stopCamera(); status.set('photo', 'Photo mode: choose or drop a photo and its plate, then press Matte.'); }
}

for (const m of ['live', 'photo'] as const) {
  const tab = $(`tab-${m}`);
  tab.addEventListener('click', () => showMode(m));
  tab.addEventListener('keydown', (e) => {
    if (e.key === 'ArrowRight' || e.key === 'ArrowLeft' || e.key === 'Home' || e.key === 'End') {
      e.preventDefault();
      showMode(mode === 'live' ? 'photo' : 'live', true);
    }
  });
}

// Shortcuts in live mode, unless the keyboard is in a form field.
document.addEventListener('keydown', (e) => {
  if (mode !== 'live' || !live || e.ctrlKey || e.metaKey || e.altKey) return;
  const target = e.target as HTMLElement;
  if (target.closest('input, select, textarea')) return;
  if (e.key === 'c' || e.key === 'C') { e.preventDefault(); void live.capturePlate(); }
  if (e.key === 'r' || e.key === 'R') { e.preventDefault(); live.toggleRecording(); }
});

async function main(): Promise<void> {
  live = new LiveMode(params, status);
  api.live = live;
  live.active = mode === 'live';
  selectTab(params.mode, false);
  // The camera (and its permission question) while the models load.
  const camera = mode === 'live' && params.autostart ? live.startCamera() : Promise.resolve();
  const bar = $<HTMLProgressElement>('loading-bar');
  const label = $('loading-label');
  let engine: Engine;
  try {
    engine = await startEngine(liveSettings(params), priorSettings(params), params.mode === 'photo', (share, what) => {
      bar.value = share;
      label.textContent = `${what}… ${Math.round(share * 100)}%`;
      if (status.state === 'loading') status.set('loading', `${what}… ${Math.round(share * 100)}%`);
    });
  } catch (err) {
    status.set('error', `The models could not be loaded: ${(err as Error).message}`);
    return;
  }
  api.modelLoadMs = Math.round(performance.now());
  api.backend = engine.backend;
  $('loading').hidden = true;
  engine.matte.addEventListener('message', (e) => {
    if (e.data.type === 'error' && e.data.context === 'init') status.set('error', `The matting engine failed: ${e.data.message}`);
  });
  api.photo = new PhotoMode(engine, status);
  await camera;
  const cameraFailed = status.state === 'error';
  live.attach(engine);
  if (mode === 'photo') {
    status.set('photo', 'Photo mode: choose or drop a photo and its plate, then press Matte.');
  } else if (!params.autostart) {
    status.set('ready', 'Models loaded. Press “Retry camera” to start the camera.');
    $('camera-retry').hidden = false;
  } else if (cameraFailed) {
    $('camera-retry').hidden = false; // the camera's message stays
  }
}

void main();
