/**
 * The platform for Node (see types.ts): OpenCV.js through require, files from the package's models/
 * folder, hashes from node:crypto. The web bundle swaps this module for ./browser.ts.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { MODELS_DIR } from '../paths.js';
import type { OnnxTensor, Platform } from './types.js';

export type { OnnxSession, OnnxTensor, Platform } from './types.js';

export const platform: Platform = {
  name: 'node',
  async openCv() {
    const require = createRequire(import.meta.url);
    // The Emscripten build installs process-wide handlers that rethrow any uncaught error with the
    // whole 8 MB library source attached; they are not ours to install, so they are removed.
    const before = { ex: process.listeners('uncaughtException'), rej: process.listeners('unhandledRejection') };
    const module: unknown = require('@techstark/opencv-js');
    for (const l of process.listeners('uncaughtException')) if (!before.ex.includes(l)) process.removeListener('uncaughtException', l);
    for (const l of process.listeners('unhandledRejection')) if (!before.rej.includes(l)) process.removeListener('unhandledRejection', l);
    return { module };
  },
  modelsDir: MODELS_DIR,
  locate: (dir, file) => join(dir, file),
  readBytes: async (location) => readFile(location),
  sha256Hex: async (bytes) => createHash('sha256').update(bytes).digest('hex'),
  tfjsWasmPrefix: () => createRequire(import.meta.url).resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]*$/, ''),
  async onnxSession(bytes, { threads }) {
    // Imported here, not at the top: a process that runs no ONNX model never loads the native addon.
    const { default: ort, createSession } = await import('./ort.js');
    const session = await createSession(bytes, threads);
    return {
      async run(feeds) {
        const inputs: Record<string, InstanceType<typeof ort.Tensor>> = {};
        for (const [name, t] of Object.entries(feeds)) inputs[name] = new ort.Tensor('float32', t.data, t.dims);
        const out = await session.run(inputs);
        const result: Record<string, OnnxTensor> = {};
        for (const [name, t] of Object.entries(out)) result[name] = { data: t.data as Float32Array, dims: t.dims };
        return result;
      },
    };
  },
};
