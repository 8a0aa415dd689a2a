/**
 * The learned band refiner's contract (issue 11), pure and shared by Node and the browser: what the
 * classic engine knows at full resolution inside its uncertain band, cut into tiles with context,
 * and the refined alpha put back. A `BandRefiner` is whatever turns those tiles into alpha: the
 * shipped ONNX model (refiner-onnx.ts, Node edge), or the shard writer that records them for training.
 *
 * As BackgroundMattingV2's refiner: the whole-frame decisions were made on the coarse grid; only
 * tiles that hold band pixels are processed at full resolution, and only band pixels change.
 */
import { createPlane, type ImageF32, type Plane } from '../image.js';

/** What the classic engine hands the refiner, all at the image's full resolution. */
export interface BandFeatures {
  image: ImageF32;
  /** The aligned, colour-matched plate after the band's local re-alignment. */
  plate: ImageF32;
  /** Classic's alpha (0 or 1 outside the band). */
  alpha: Plane;
  /** The subject's colours F̂ propagated from opaque pixels (band pixels only; 0 elsewhere). */
  fHat: ImageF32;
  /** Prior / silhouette alpha the engine falls back on where the equation is ill-posed (band only). */
  fallback: Plane;
  /** 1 inside the uncertain band. */
  band: Plane;
}

export interface BandRefiner {
  readonly name: string;
  /** Refined alpha for the whole frame; pixels outside the band keep `features.alpha`. */
  refine(features: BandFeatures): Promise<Plane>;
}

/** Channels of one input tile, in this order (the model card documents the same). */
export const REFINER_CHANNELS = ['image.r', 'image.g', 'image.b', 'plate.r', 'plate.g', 'plate.b', 'alpha', 'fhat.r', 'fhat.g', 'fhat.b', 'fallback', 'band'] as const;

export interface TileGrid {
  /** Side of the part of a tile whose alpha is written back. */
  tile: number;
  /** Context on each side (at least the network's receptive radius). */
  pad: number;
  /** Top-left corners (x, y) of the tiles holding at least one band pixel. */
  origins: Int32Array;
}

/** The tiles of side `tile` that hold band pixels. */
export function bandTiles(band: Plane, tile: number, pad: number): TileGrid {
  const { width, height } = band;
  const tx = Math.ceil(width / tile), ty = Math.ceil(height / tile);
  const used = new Uint8Array(tx * ty);
  for (let y = 0; y < height; y++) {
    const row = Math.floor(y / tile) * tx;
    for (let x = 0; x < width; x++) if (band.data[y * width + x]! > 0.5) used[row + Math.floor(x / tile)] = 1;
  }
  const origins: number[] = [];
  for (let j = 0; j < ty; j++) for (let i = 0; i < tx; i++) if (used[j * tx + i]) origins.push(i * tile, j * tile);
  return { tile, pad, origins: Int32Array.from(origins) };
}

/**
 * Tiles `first .. first+count-1` as one NCHW float32 batch of side tile + 2·pad; context outside the
 * image is zero in every channel (training cuts its tiles the same way).
 */
export function packTiles(f: BandFeatures, grid: TileGrid, first: number, count: number): Float32Array {
  const { width, height } = f.image;
  const side = grid.tile + 2 * grid.pad, plane = side * side, C = REFINER_CHANNELS.length;
  const out = new Float32Array(count * C * plane);
  const img = f.image.data, pl = f.plate.data, a = f.alpha.data, fh = f.fHat.data, fb = f.fallback.data, bd = f.band.data;
  for (let n = 0; n < count; n++) {
    const ox = grid.origins[(first + n) * 2]! - grid.pad, oy = grid.origins[(first + n) * 2 + 1]! - grid.pad;
    const base = n * C * plane;
    for (let v = 0; v < side; v++) {
      const y = oy + v;
      if (y < 0 || y >= height) continue;
      for (let u = 0; u < side; u++) {
        const x = ox + u;
        if (x < 0 || x >= width) continue;
        const p = y * width + x, o = base + v * side + u;
        out[o] = img[p * 3]!; out[o + plane] = img[p * 3 + 1]!; out[o + 2 * plane] = img[p * 3 + 2]!;
        out[o + 3 * plane] = pl[p * 3]!; out[o + 4 * plane] = pl[p * 3 + 1]!; out[o + 5 * plane] = pl[p * 3 + 2]!;
        out[o + 6 * plane] = a[p]!;
        out[o + 7 * plane] = fh[p * 3]!; out[o + 8 * plane] = fh[p * 3 + 1]!; out[o + 9 * plane] = fh[p * 3 + 2]!;
        out[o + 10 * plane] = fb[p]!; out[o + 11 * plane] = bd[p]!;
      }
    }
  }
  return out;
}

/**
 * Writes the centres of a batch of refined tiles (N×1×side×side) into `alpha`, band pixels only.
 */
export function unpackTiles(alpha: Plane, band: Plane, grid: TileGrid, first: number, count: number, tiles: Float32Array): void {
  const { width, height } = alpha;
  const side = grid.tile + 2 * grid.pad, plane = side * side;
  for (let n = 0; n < count; n++) {
    const ox = grid.origins[(first + n) * 2]!, oy = grid.origins[(first + n) * 2 + 1]!;
    for (let v = 0; v < grid.tile && oy + v < height; v++) {
      for (let u = 0; u < grid.tile && ox + u < width; u++) {
        const p = (oy + v) * width + ox + u;
        if (band.data[p]! <= 0.5) continue;
        alpha.data[p] = Math.min(1, Math.max(0, tiles[n * plane + (v + grid.pad) * side + u + grid.pad]!));
      }
    }
  }
}

/** Runs a tile model over every band tile in batches: the part every refiner implementation shares. */
export async function refineTiles(f: BandFeatures, tile: number, pad: number, batch: number, run: (input: Float32Array, count: number, side: number) => Promise<Float32Array>): Promise<{ alpha: Plane; tiles: number }> {
  const grid = bandTiles(f.band, tile, pad);
  const alpha = createPlane(f.alpha.width, f.alpha.height);
  alpha.data.set(f.alpha.data);
  const total = grid.origins.length / 2;
  for (let first = 0; first < total; first += batch) {
    const count = Math.min(batch, total - first);
    const out = await run(packTiles(f, grid, first, count), count, tile + 2 * pad);
    unpackTiles(alpha, f.band, grid, first, count, out);
  }
  return { alpha, tiles: total };
}
