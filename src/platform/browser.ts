/**
 * The platform in the browser (see types.ts), for the page's workers: OpenCV.js, the models and
 * TensorFlow.js's WebAssembly binaries all come from the page's own origin (the folder the worker's
 * script was served from), hashes from Web Crypto. The web bundle uses this module wherever the core
 * imports ./index.js (scripts/build-web.mjs); Node never loads it.
 */
import type { Platform } from './types.js';

/** A classic worker's script loader, and what OpenCV.js's UMD wrapper leaves on the global scope. */
declare const importScripts: ((...urls: string[]) => void) | undefined;

export type { OnnxSession, OnnxTensor, Platform } from './types.js';

/** Told how far each model file has come (for a loading bar); set by the page's workers. */
let progress: ((location: string, loaded: number, total: number) => void) | undefined;
export function onFetchProgress(listener: typeof progress): void {
  progress = listener;
}

/** The folder the running script was served from: the app's root, where models/ and tfjs/ are. */
function appRoot(): string {
  return new URL('./', self.location.href).href;
}

async function fetchBytes(location: string): Promise<Uint8Array> {
  const response = await fetch(location);
  if (!response.ok || !response.body) throw new Error(`${location}: HTTP ${response.status}`);
  const total = Number(response.headers.get('content-length') ?? 0);
  const chunks: Uint8Array[] = [];
  let loaded = 0;
  const reader = response.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    loaded += value.length;
    progress?.(location, loaded, Math.max(total, loaded));
  }
  const bytes = new Uint8Array(loaded);
  let offset = 0;
  for (const c of chunks) { bytes.set(c, offset); offset += c.length; }
  return bytes;
}

export const platform: Platform = {
  name: 'browser',
  async openCv() {
    // OpenCV.js as published, run as the classic script it is (its wrapper is not strict-mode code, so
    // it is not bundled): the build copies it to vendor/opencv.js.
    if (typeof importScripts !== 'function') throw new Error('OpenCV.js loads in a classic worker only');
    importScripts(new URL('vendor/opencv.js', appRoot()).href);
    // In a worker its wrapper leaves the factory, not the module.
    const found = (self as unknown as { cv: unknown }).cv;
    return { module: typeof found === 'function' ? (found as () => unknown)() : found };
  },
  get modelsDir() { return new URL('models/', appRoot()).href; },
  locate: (dir, file) => new URL(file, dir.endsWith('/') ? dir : `${dir}/`).href,
  readBytes: fetchBytes,
  async sha256Hex(bytes) {
    if (!crypto.subtle) throw new Error('checking the model files needs a secure context (https, or http on localhost)');
    const digest = await crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>);
    return Array.from(new Uint8Array(digest), (b) => b.toString(16).padStart(2, '0')).join('');
  },
  tfjsWasmPrefix: () => new URL('tfjs/', appRoot()).href,
};
