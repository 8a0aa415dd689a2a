/**
 * The shipped band refiner: a small fully convolutional network (training/refiner.py) exported to
 * ONNX, run by ONNX Runtime over the band's tiles (refine.ts). Node edge: the browser would run the
 * same model and the same tiling with onnxruntime-web.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { CleanplateError } from '../errors.js';
import type { Plane } from '../image.js';
import { MODELS_DIR } from '../paths.js';
import { threadLimit } from '../threads.js';
import { refineTiles, REFINER_CHANNELS, type BandFeatures, type BandRefiner } from './refine.js';

export interface RefinerModelInfo {
  file: string;
  sha256: string;
  /** Side of a tile's written part and its context on each side (≥ the receptive radius). */
  tile: number;
  pad: number;
  channels: number;
}

/** Tiles per ONNX Runtime call: large enough to amortise the call, small enough to stay in cache. */
const BATCH = 64;

export class OnnxRefiner implements BandRefiner {
  private constructor(private readonly session: ort.InferenceSession, readonly info: RefinerModelInfo, readonly name: string) {}

  /**
   * Loads a model of models/refiner.json (hash-checked). `threads`: ONNX Runtime's intra-op threads
   * (default: both cores of a 2-core machine, at most 2 — the tiles are small and the video path
   * runs the prior on the other core; CLEANPLATE_THREADS caps it for a worker pinned to a core).
   */
  static async create(modelName?: string, modelsDir = MODELS_DIR, threads = threadLimit() ?? Math.max(1, Math.min(2, cpus().length))): Promise<OnnxRefiner> {
    const manifestPath = join(modelsDir, 'refiner.json');
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8').catch(() => {
      throw new CleanplateError('no refiner model manifest: the refined engine needs a trained refiner', manifestPath);
    })) as { default: string; models: Record<string, RefinerModelInfo> };
    const chosen = modelName ?? manifest.default;
    const info = manifest.models[chosen];
    if (!info) throw new CleanplateError(`no refiner model named '${chosen}' (have: ${Object.keys(manifest.models).join(', ')})`, manifestPath);
    if (info.channels !== REFINER_CHANNELS.length) throw new CleanplateError(`refiner model expects ${info.channels} channels, this version feeds ${REFINER_CHANNELS.length}`, manifestPath);
    const path = join(modelsDir, info.file);
    const bytes = await readFile(path).catch(() => { throw new CleanplateError('refiner model file is missing', path); });
    const sum = createHash('sha256').update(bytes).digest('hex');
    if (sum !== info.sha256) throw new CleanplateError(`refiner model sha256 ${sum.slice(0, 12)}… does not match its card (${info.sha256.slice(0, 12)}…)`, path);
    try {
      const session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
      return new OnnxRefiner(session, info, chosen);
    } catch (err) {
      throw new CleanplateError(`refiner model cannot be loaded (${String((err as Error).message).split('\n')[0]})`, path);
    }
  }

  async refine(f: BandFeatures): Promise<Plane> {
    const input = this.session.inputNames[0]!, output = this.session.outputNames[0]!;
    const { alpha } = await refineTiles(f, this.info.tile, this.info.pad, BATCH, async (data, count, side) => {
      const out = await this.session.run({ [input]: new ort.Tensor('float32', data, [count, this.info.channels, side, side]) });
      return out[output]!.data as Float32Array;
    });
    return alpha;
  }
}
