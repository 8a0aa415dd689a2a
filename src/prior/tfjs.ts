/**
 * TensorFlow.js on its WebAssembly backend, set up once, and graph models loaded from the
 * vendored files in models/prior (hash-checked) rather than from any URL.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import * as tf from '@tensorflow/tfjs-core';
import { loadGraphModel, type GraphModel } from '@tensorflow/tfjs-converter';
import { setWasmPaths } from '@tensorflow/tfjs-backend-wasm';
import { CleanplateError } from '../errors.js';
import { MODELS_DIR } from '../paths.js';

export { tf };
let backendReady: Promise<void> | undefined;

export function initTfjs(): Promise<void> {
  backendReady ??= (async () => {
    const require = createRequire(import.meta.url);
    setWasmPaths(require.resolve('@tensorflow/tfjs-backend-wasm').replace(/[^/\\]*$/, ''));
    await tf.setBackend('wasm');
    await tf.ready();
  })();
  return backendReady;
}

async function readVerified(dir: string, file: string, expected: string | undefined): Promise<Buffer> {
  const path = join(dir, file);
  const bytes = await readFile(path).catch(() => {
    throw new CleanplateError('model file is missing', path);
  });
  const sum = createHash('sha256').update(bytes).digest('hex');
  if (expected && sum !== expected) {
    throw new CleanplateError(`model file sha256 ${sum.slice(0, 12)}… does not match the manifest (${expected.slice(0, 12)}…)`, path);
  }
  return bytes;
}

export async function loadPriorModel(name: 'rvm' | 'selfie', dir = join(MODELS_DIR, 'prior')): Promise<GraphModel> {
  await initTfjs();
  const manifest = JSON.parse(await readFile(join(dir, 'manifest.json'), 'utf8')) as Record<string, { files: Record<string, string> }>;
  const files = manifest[name]?.files ?? {};
  const json = JSON.parse((await readVerified(dir, `${name}.json`, files[`${name}.json`])).toString('utf8'));
  const bin = await readVerified(dir, `${name}.bin`, files[`${name}.bin`]);
  try {
    return await loadGraphModel({
      load: async () => ({
        modelTopology: json.modelTopology,
        weightSpecs: json.weightsManifest.flatMap((g: { weights: unknown[] }) => g.weights),
        weightData: new Uint8Array(bin).buffer as ArrayBuffer,
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
      }),
    });
  } catch (err) {
    throw new CleanplateError(`model cannot be loaded (${(err as Error).message})`, join(dir, `${name}.json`));
  }
}
