/**
 * TensorFlow.js on its WebAssembly backend, set up once, and graph models loaded from the
 * vendored files in models/prior (hash-checked) rather than from any URL. Where the files and the
 * WebAssembly binaries are is the platform's business (src/platform: a folder in Node, the page's
 * own origin in the browser).
 */
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { CleanplateError } from '../errors.js';
import { readVerified } from '../models.js';
import { platform } from '../platform/index.js';
import { registerWasmCopyKernels } from './wasm-kernels.js';

export { tf };
let backendReady: Promise<void> | undefined;

export function initTfjs(): Promise<void> {
  backendReady ??= (async () => {
    setWasmPaths(platform.tfjsWasmPrefix());
    await tf.setBackend('wasm');
    await tf.ready();
    registerWasmCopyKernels();
  })();
  return backendReady;
}

/** The folder (or URL) of the vendored prior models. */
export function priorModelsDir(): string {
  return platform.locate(platform.modelsDir, 'prior');
}

export async function loadPriorModel(name: 'rvm' | 'selfie', dir = priorModelsDir()): Promise<GraphModel> {
  await initTfjs();
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const manifest = JSON.parse(text(await platform.readBytes(platform.locate(dir, 'manifest.json')))) as Record<string, { files: Record<string, string> }>;
  const files = manifest[name]?.files ?? {};
  const json = JSON.parse(text(await readVerified(platform.locate(dir, `${name}.json`), files[`${name}.json`], 'model file')));
  const bin = await readVerified(platform.locate(dir, `${name}.bin`), files[`${name}.bin`], 'model file');
  try {
    return await loadGraphModel({
      load: async () => ({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
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
