/**
 * The page's side of the two workers: preloads what they will fetch (behind the loading bar), starts
 * them, joins them with a MessageChannel and waits until both have their models.
 */
import type { FromMatte, FromPrior, LiveSettings, PriorSettings, ToMatte, ToPrior } from './protocol.js';

export interface Asset { url: string; bytes: number }

export interface Engine {
  matte: Worker;
  prior: Worker;
  toMatte(message: ToMatte, transfer?: Transferable[]): void;
  toPrior(message: ToPrior, transfer?: Transferable[]): void;
  /** What the prior worker runs on: SIMD, threads. */
  backend: { simd: boolean; threads: number };
}

/** Fetches the files with progress; the workers then find them in the HTTP cache. */
async function preload(files: Asset[], onProgress: (share: number) => void): Promise<void> {
  const total = files.reduce((s, f) => s + f.bytes, 0) || 1;
  const loaded = new Map<string, number>();
  const report = () => onProgress([...loaded.values()].reduce((s, v) => s + v, 0) / total);
  await Promise.all(files.map(async (f) => {
    const response = await fetch(f.url);
    if (!response.ok || !response.body) throw new Error(`${f.url}: HTTP ${response.status}`);
    const reader = response.body.getReader();
    let n = 0;
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      n += value.length;
      loaded.set(f.url, Math.min(n, f.bytes));
      report();
    }
  }));
}

/** The files a mode needs: code, the WebAssembly binary the prior worker will pick, the live model (and RVM for photos). */
export function neededAssets(files: Asset[], prior: PriorSettings, photo: boolean): Asset[] {
  const threaded = self.crossOriginIsolated && prior.threads > 1;
  const models = new Set([prior.prior, ...(photo ? ['rvm'] : [])]);
  return files.filter(({ url }) => {
    if (/^vendor\/opencv\.js$|^(matte|prior)-worker\.js$/.test(url)) return true;
    if (url === 'models/prior/manifest.json') return true;
    const model = /^models\/prior\/(\w+)\.(json|bin)$/.exec(url);
    if (model) return models.has(model[1]!);
    if (url.startsWith('tfjs/')) return url === (threaded ? 'tfjs/tfjs-backend-wasm-threaded-simd.wasm' : 'tfjs/tfjs-backend-wasm-simd.wasm');
    return false;
  });
}

export async function startEngine(live: LiveSettings, prior: PriorSettings, photo: boolean, onProgress: (share: number, what: string) => void): Promise<Engine> {
  const manifest = await fetch('assets.json').then((r) => {
    if (!r.ok) throw new Error(`assets.json: HTTP ${r.status} (is the app built? npm run build:web)`);
    return r.json() as Promise<{ files: Asset[] }>;
  });
  await preload(neededAssets(manifest.files, prior, photo), (share) => onProgress(0.9 * share, 'Loading the models'));
  onProgress(0.9, 'Starting the models');
  // Classic workers (they load OpenCV.js with importScripts), beside the page.
  const matte = new Worker('matte-worker.js', { name: 'matte' });
  const priorWorker = new Worker('prior-worker.js', { name: 'prior' });
  const channel = new MessageChannel();
  const ready = (worker: Worker, name: string) => new Promise<FromPrior | FromMatte>((resolve, reject) => {
    const onMessage = (e: MessageEvent<FromPrior | FromMatte>) => {
      if (e.data.type === 'ready') { worker.removeEventListener('message', onMessage); resolve(e.data); }
      else if (e.data.type === 'error') { worker.removeEventListener('message', onMessage); reject(new Error(`${name}: ${e.data.message}`)); }
    };
    worker.addEventListener('message', onMessage);
    worker.addEventListener('error', (e) => reject(new Error(`${name} worker failed to start: ${e.message || 'script error'}`)), { once: true });
  });
  const matteReady = ready(matte, 'matte');
  const priorReady = ready(priorWorker, 'prior');
  matte.postMessage({ type: 'init', port: channel.port1, settings: live } satisfies ToMatte, [channel.port1]);
  priorWorker.postMessage({ type: 'init', port: channel.port2, settings: prior } satisfies ToPrior, [channel.port2]);
  let done = 0;
  const step = () => onProgress(0.9 + 0.05 * ++done, 'Starting the models');
  matteReady.then(step, () => {});
  priorReady.then(step, () => {});
  const [, p] = await Promise.all([matteReady, priorReady]);
  const info = p as Extract<FromPrior, { type: 'ready' }>;
  return {
    matte, prior: priorWorker,
    toMatte: (m, t = []) => matte.postMessage(m, t),
    toPrior: (m, t = []) => priorWorker.postMessage(m, t),
    backend: { simd: info.simd, threads: info.threads },
  };
}
