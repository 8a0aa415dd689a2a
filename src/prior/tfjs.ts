/**
 * TensorFlow.js on its WebAssembly backend, set up once, and graph models loaded from the
 * vendored files in models/prior (hash-checked) rather than from any URL. Where the files and the
 * WebAssembly binaries are is the platform's business (src/platform: a folder in Node, the page's
 * own origin in the browser).
 */
import type { GraphModel } from '@tensorflow/tfjs-converter';
import type { io } from '@tensorflow/tfjs-core';
import { CleanplateError } from '../errors.js';
import { platform } from '../platform/index.js';
import { converter, tf, wasm } from '../platform/tfjs.js';
import { priorModelsDir, readPriorFiles } from './files.js';
import { registerWasmCopyKernels } from './wasm-kernels.js';

export { tf };
let backendReady: Promise<void> | undefined;

export function initTfjs(): Promise<void> {
  backendReady ??= (async () => {
    wasm.setWasmPaths(platform.tfjsWasmPrefix());
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmCopyKernels();
  })();
  return backendReady;
}

export async function loadPriorModel(name: 'rvm' | 'selfie', dir = priorModelsDir()): Promise<GraphModel> {
  await initTfjs();
  const { json, bin } = await readPriorFiles(name, dir);
  try {
    return await converter.loadGraphModel({
      load: async () => ({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g) => g.weights) as io.WeightsManifestEntry[],
        weightData: bin.buffer.slice(bin.byteOffset, bin.byteOffset + bin.byteLength) as ArrayBuffer,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
      }),
    });
  } catch (err) {
    throw new CleanplateError(`model cannot be loaded (${(err as Error).message})`, platform.locate(dir, `${name}.json`));
  }
}
