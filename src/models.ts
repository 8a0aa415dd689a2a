/**
 * Reading the shipped model files, hash-checked, wherever the platform keeps them (a folder in Node,
 * the page's origin in the browser): the one place the prior, network and refiner models are read.
 */
import { CleanplateError } from './errors.js';
import { platform } from './platform/index.js';

/** A model file's bytes, refused unless its sha256 is `expected`; `what` names the file in errors. */
export async function readVerified(location: string, expected: string | undefined, what: string, against = 'the manifest'): Promise<Uint8Array> {
  const bytes = await platform.readBytes(location).catch(() => {
    throw new CleanplateError(`${what} is missing`, location);
  });
  const sum = await platform.sha256Hex(bytes);
  if (expected && sum !== expected) {
    throw new CleanplateError(`${what} sha256 ${sum.slice(0, 12)}… does not match ${against} (${expected.slice(0, 12)}…)`, location);
  }
  return bytes;
}

export interface ModelEntry { file: string; sha256: string }

/**
 * Model `name` (default: the manifest's default) of a manifest `{ default, models: { NAME: entry } }`
 * in `modelsDir` (models/network.json, models/refiner.json), its bytes checked against the entry.
 */
export async function readManifestModel<T extends ModelEntry>(modelsDir: string, manifestFile: string, name: string | undefined, kind: string, needs: string): Promise<{ name: string; info: T; bytes: Uint8Array; location: string; manifestLocation: string }> {
  const manifestLocation = platform.locate(modelsDir, manifestFile);
  const raw = await platform.readBytes(manifestLocation).catch(() => {
    throw new CleanplateError(`no ${kind} model manifest: ${needs}`, manifestLocation);
  });
  const manifest = JSON.parse(new TextDecoder().decode(raw)) as { default: string; models: Record<string, T> };
  const chosen = name ?? manifest.default;
  const info = manifest.models[chosen];
  if (!info) throw new CleanplateError(`no ${kind} model named '${chosen}' (have: ${Object.keys(manifest.models).join(', ')})`, manifestLocation);
  const location = platform.locate(modelsDir, info.file);
  const bytes = await readVerified(location, info.sha256, `${kind} model file`, 'its card');
  return { name: chosen, info, bytes, location, manifestLocation };
}
