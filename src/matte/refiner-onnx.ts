/**
 * The shipped band refiner: a small fully convolutional network (training/refiner.py) exported to
 * ONNX, run by ONNX Runtime over the band's tiles (refine.ts). Node edge: the browser would run the
 * same model and the same tiling with onnxruntime-web.
 */
import { cpus } from 'node:os';
import ort from '../platform/ort.js';
import { CleanplateError } from '../errors.js';
import type { Plane } from '../image.js';
import { MODELS_DIR } from '../paths.js';
import { threadLimit } from '../threads.js';
import { openOnnxModel } from './onnx.js';
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
    const { session, info, name, manifestLocation } = await openOnnxModel<RefinerModelInfo>(modelsDir, 'refiner.json', modelName, 'refiner', 'the refined engine needs a trained refiner', threads);
    if (info.channels !== REFINER_CHANNELS.length) throw new CleanplateError(`refiner model expects ${info.channels} channels, this version feeds ${REFINER_CHANNELS.length}`, manifestLocation);
    return new OnnxRefiner(session, info, name);
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
