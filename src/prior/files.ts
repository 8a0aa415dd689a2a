/**
 * The vendored prior model files (models/prior: a graph model's JSON and weights, hash-checked
 * against manifest.json), read without TF.js: a process whose prior runs on a prior thread checks
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
  const text = (bytes: Uint8Array) => new TextDecoder().decode(bytes);
  const manifest = JSON.parse(text(await platform.readBytes(platform.locate(dir, 'manifest.json')))) as Record<string, { files: Record<string, string> }>;
  const files = manifest[name]?.files ?? {};
  const json: GraphModelJson = JSON.parse(text(await readVerified(platform.locate(dir, `${name}.json`), files[`${name}.json`], 'model file')));
  const bin = await readVerified(platform.locate(dir, `${name}.bin`), files[`${name}.bin`], 'model file');
  return { json, bin };
}
