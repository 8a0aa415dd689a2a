/** ONNX Runtime (Node) sessions for the shipped models of a manifest: the network engine's and the refiner's. */
import ort, { createSession } from '../platform/ort.js';
import { CleanplateError } from '../errors.js';
import { readManifestModel, type ModelEntry } from '../models.js';

export async function openOnnxModel<T extends ModelEntry>(modelsDir: string, manifestFile: string, name: string | undefined, kind: string, needs: string, threads: number): Promise<{ session: ort.InferenceSession; info: T; name: string; location: string; manifestLocation: string }> {
  const m = await readManifestModel<T>(modelsDir, manifestFile, name, kind, needs);
  try {
    const session = await createSession(m.bytes, threads);
    return { session, info: m.info, name: m.name, location: m.location, manifestLocation: m.manifestLocation };
  } catch (err) {
    throw new CleanplateError(`${kind} model cannot be loaded (${String((err as Error).message).split('\n')[0]})`, m.location);
  }
}
