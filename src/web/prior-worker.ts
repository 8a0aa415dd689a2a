/**
 * The prior worker: the person model (TensorFlow.js on WebAssembly) on its own core. Live frames come
 * from the page as VideoFrames, are drawn small (the prior's grid) and go through the core's
 * `Prior.stream()` — RVM keeps its recurrent state from frame to frame — and the soft alpha goes
 * straight to the matte worker, which uses the newest one it has (the prior may lag a frame or two).
 * Photo mode's prior (the CLI's: `Prior.estimate`) is asked for by the matte worker over the same channel.
 */
import { setThreadsCount } from '@tensorflow/tfjs-backend-wasm';
import { loadCv } from '../cv.js';
import { fromRgba, type ImageF32 } from '../image.js';
import { onFetchProgress } from '../platform/browser.js';
import { createPrior, type Prior, type PriorName, type PriorStream } from '../prior/index.js';
import { initTfjs, tf } from '../prior/tfjs.js';
import { drawRgba } from './pixels.js';
import type { FromPrior, LivePrior, PriorChannel, PriorSettings, ToPrior } from './protocol.js';
import { messageOf, scope } from './worker-scope.js';

const post = (m: FromPrior, transfer: Transferable[] = []) => scope.postMessage(m, transfer);

let port: MessagePort;
let settings: PriorSettings;
const priors = new Map<PriorName, Promise<Prior>>();
let stream: { prior: LivePrior; side: number; stream: PriorStream } | undefined;
let image: ImageF32 | undefined;
/** One thing at a time: a recurrent state must see the frames in order, and photos wait their turn. */
let queue: Promise<void> = Promise.resolve();

function prior(name: PriorName): Promise<Prior> {
  let p = priors.get(name);
  if (!p) { p = createPrior(name); priors.set(name, p); p.catch(() => priors.delete(name)); }
  return p;
}

async function liveStream(): Promise<PriorStream> {
  if (!stream || stream.prior !== settings.prior || stream.side !== settings.side) {
    stream?.stream.close();
    const s = (await prior(settings.prior)).stream({ longSide: settings.side });
    stream = { prior: settings.prior, side: settings.side, stream: s };
  }
  return stream.stream;
}

async function init(msg: Extract<ToPrior, { type: 'init' }>): Promise<void> {
  const t0 = performance.now();
  port = msg.port;
  settings = msg.settings;
  onFetchProgress((file, loaded, total) => post({ type: 'progress', file, loaded, total }));
  // Threads only where the page is cross-origin isolated (SharedArrayBuffer); set before the backend starts.
  const threads = (self as unknown as { crossOriginIsolated?: boolean }).crossOriginIsolated ? Math.max(1, settings.threads) : 1;
  setThreadsCount(threads);
  // One thread: the plain SIMD binary, not the threaded one with a pool of one.
  if (threads <= 1) tf.env().set('WASM_HAS_MULTITHREAD_SUPPORT', false);
  await Promise.all([loadCv(), initTfjs()]);
  await liveStream();
  port.onmessage = (e: MessageEvent<PriorChannel>) => { if (e.data.type === 'photo') { const m = e.data; queue = queue.then(() => photo(m)); } };
  post({ type: 'ready', ms: performance.now() - t0, simd: tf.env().getBool('WASM_HAS_SIMD_SUPPORT') as boolean, threads, prior: settings.prior });
}

async function frame(msg: Extract<ToPrior, { type: 'frame' }>): Promise<void> {
  const t0 = performance.now();
  try {
    const s = await liveStream();
    const rgba = drawRgba(msg.frame, msg.frame.displayWidth, msg.frame.displayHeight, msg.width, msg.height);
    image = fromRgba(msg.width, msg.height, rgba, image);
    const alpha = await s.estimate(image);
    port.postMessage({ type: 'prior', id: msg.id, width: alpha.width, height: alpha.height, data: alpha.data } satisfies PriorChannel, [alpha.data.buffer]);
  } finally {
    msg.frame.close();
    post({ type: 'done', id: msg.id, ms: performance.now() - t0 });
  }
}

async function photo(msg: Extract<PriorChannel, { type: 'photo' }>): Promise<void> {
  try {
    const alpha = await (await prior(msg.prior)).estimate({ width: msg.width, height: msg.height, channels: 3, data: msg.data });
    port.postMessage({ type: 'photo-prior', id: msg.id, data: alpha.data } satisfies PriorChannel, [alpha.data.buffer]);
  } catch (err) {
    port.postMessage({ type: 'photo-prior', id: msg.id, error: messageOf(err) } satisfies PriorChannel);
  }
}

scope.onmessage = (e: MessageEvent<ToPrior>) => {
  const msg = e.data;
  const run = async () => {
    switch (msg.type) {
      case 'init': return init(msg);
      case 'settings': settings = msg.settings; return void (await liveStream());
      case 'reset': stream?.stream.close(); stream = undefined; return;
      case 'frame': return frame(msg);
    }
  };
  queue = queue.then(run).catch((err) => post({ type: 'error', message: messageOf(err) }));
};
