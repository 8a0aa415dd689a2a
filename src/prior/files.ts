/**
 * The vendored prior model files (models/prior: a graph model's JSON and weights, and RVM as ONNX,
 * hash-checked against manifest.json), read without TF.js: a process whose prior runs on a prior thread checks
 * them up front, with the same errors, and the thread loads them.
 */
import { readVerified } from '../models.js';
import { platform } from '../platform/index.js';

/** The folder (or URL) of the vendored prior models. */
export function priorModelsDir(): string {
  return platform.locate(platform.modelsDir, 'prior');
}

/** A TF.js graph model's JSON (model.json), as its converter writes it. */
export interface GraphModelJson {
  modelTopology: {};
  weightsManifest: { weights: {}[] }[];
  format?: string;
  generatedBy?: string;
  convertedBy?: string | null;
  signature?: {};
  userDefinedMetadata?: { [key: string]: {} };
}

/** Model `name`'s topology (parsed JSON) and weights, each refused unless its sha256 matches the manifest. */
export async function readPriorFiles(name: 'rvm' | 'selfie', dir = priorModelsDir()): Promise<{ json: GraphModelJson; bin: Uint8Array }> {
  const files = await manifestFiles(name, dir);
  const json: GraphModelJson = JSON.parse(new TextDecoder().decode(await readVerified(platform.locate(dir, `${name}.json`), files[`${name}.json`], 'model file')));
  const bin = await readVerified(platform.locate(dir, `${name}.bin`), files[`${name}.bin`], 'model file');
  return { json, bin };
}

/** RVM converted to ONNX (training/export_rvm_onnx.py), refused unless its sha256 matches the manifest. */
export async function readPriorOnnx(name: 'rvm', dir = priorModelsDir()): Promise<Uint8Array> {
  return readVerified(platform.locate(dir, `${name}.onnx`), (await manifestFiles(name, dir))[`${name}.onnx`], 'model file');
}

/** The sha256 of each of model `name`'s files, from the folder's manifest.json. */
async function manifestFiles(name: string, dir: string): Promise<Record<string, string>> {
  const manifest = JSON.parse(new TextDecoder().decode(await platform.readBytes(platform.locate(dir, 'manifest.json')))) as Record<string, { files: Record<string, string> }>;
  return manifest[name]?.files ?? {};
}
