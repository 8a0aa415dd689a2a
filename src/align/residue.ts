/**
 * Alignment residue is not subject. One homography leaves a pixel or two of error along strong edges
 * of the plate (a ridge, a roof line, a window frame, a pole): sub-pixel misfit, lens distortion or
 * parallax. Differencing turns that into thin lines of "subject" that cross the frame and stick to
 * the real subject where they touch it.
 *
 * Local re-alignment: on and next to the plate's strong edges, each pixel takes the plate pixel of
 * the small shift (up to RADIUS px) whose 3x3 neighbourhood best explains the image there, when that
 * shift explains it much better than no shift and well enough to be background. A subject in front
 * of the edge matches no shift of the plate and keeps the plate as it was.
 *
 * Written by hand: OpenCV's optical flow gives one vector per point and smooths across the subject's
 * outline; a per-pixel block match over a 5x5 window on edge pixels only is a few lines and costs
 * tens of milliseconds on a 1080p frame (only differing edge pixels are searched).
 */
import type { ImageF32, Plane } from '../image.js';

/** Largest shift searched, in pixels. */
const RADIUS = 2;
/** A plate edge: grey-level change over two pixels (0..1) above this. */
const EDGE = 0.06;
/** The best shift must cut the 3x3 difference to this share of the unshifted one... */
const GAIN = 0.5;
/** ...and leave a mean difference (0..1) under this: background, not a subject that happens to match better. */
const EXPLAINED = 0.04;

/** Edge pixels that differed from the plate and were searched; of those, the ones given a shifted plate pixel. */
export interface ResidueReport { edgePixels: number; realigned: number }

/** 1 where the plate has a strong edge (grey-level change over two pixels above EDGE). */
function edgeMap(plate: ImageF32): Uint8Array {
  const { width: w, height: h } = plate;
  const d = plate.data;
  const grey = new Float32Array(w * h);
  for (let p = 0; p < grey.length; p++) grey[p] = 0.299 * d[p * 3]! + 0.587 * d[p * 3 + 1]! + 0.114 * d[p * 3 + 2]!;
  const edges = new Uint8Array(w * h);
  for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) {
    const p = y * w + x;
    if (Math.abs(grey[p + 1]! - grey[p - 1]!) > EDGE || Math.abs(grey[p + w]! - grey[p - w]!) > EDGE) edges[p] = 1;
  }
  return edges;
}

/** The edge map grown by a (2r+1)² square: a separable running maximum, rows then columns. */
function grow(edges: Uint8Array, w: number, h: number, r: number): Uint8Array {
  const rows = new Uint8Array(w * h), out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const row = y * w;
    let last = -Infinity;
    for (let x = 0; x < w + r; x++) {
      if (x < w && edges[row + x]) last = x;
      const at = x - r;
      if (at >= 0 && x - last <= 2 * r) rows[row + at] = 1;
    }
  }
  for (let x = 0; x < w; x++) {
    let last = -Infinity;
    for (let y = 0; y < h + r; y++) {
      if (y < h && rows[y * w + x]) last = y;
      const at = y - r;
      if (at >= 0 && y - last <= 2 * r) out[at * w + x] = 1;
    }
  }
  return out;
}

/** Mean |I(p) − B(q)| over the three channels. */
function pixelDiff(a: Float32Array, b: Float32Array, p: number, q: number): number {
  return (Math.abs(a[p * 3]! - b[q * 3]!) + Math.abs(a[p * 3 + 1]! - b[q * 3 + 1]!) + Math.abs(a[p * 3 + 2]! - b[q * 3 + 2]!)) / 3;
}

/**
 * The plate with its strong edges re-aligned locally to the image. Returns the input plate itself
 * when nothing changed. `valid` (optional) marks the pixels the warped plate really covers. Only
 * pixels that differ from the plate are looked at: residue is a difference, and most edge pixels
 * of a well-aligned plate agree already.
 */
export function realignEdges(image: ImageF32, plate: ImageF32, valid?: Plane): { plate: ImageF32; report: ResidueReport } {
  const { width: w, height: h } = image;
  const a = image.data, b = plate.data;
  // Residue lies on the plate's edges and beside them, up to the search radius (and one more).
  const near = grow(edgeMap(plate), w, h, RADIUS + 1);
  let out: ImageF32 | undefined;
  let looked = 0, realigned = 0;
  const shifts: number[] = [];
  for (let y = 1; y < h - 1; y++) for (let x = 1; x < w - 1; x++) {
    const p = y * w + x;
    if ((valid && valid.data[p]! <= 0.5) || !near[p] || pixelDiff(a, b, p, p) < EXPLAINED) continue;
    looked++;
    // A shift of the plate can only explain p if the plate pixel it brings matches p itself: that
    // cheap test picks the few shifts worth a block match and turns the subject's pixels away.
    shifts.length = 0;
    for (let dy = -RADIUS; dy <= RADIUS; dy++) for (let dx = -RADIUS; dx <= RADIUS; dx++) {
      if (dx === 0 && dy === 0) continue;
      const q = Math.min(h - 1, Math.max(0, y + dy)) * w + Math.min(w - 1, Math.max(0, x + dx));
      if (pixelDiff(a, b, p, q) < EXPLAINED) shifts.push(dx, dy);
    }
    if (!shifts.length) continue;
    // 3x3 block match of the image around p against the plate shifted by (dx, dy), edges clamped.
    const block = (dx: number, dy: number, bound: number): number => {
      let sum = 0;
      for (let oy = -1; oy <= 1 && sum < bound; oy++) {
        const yy = y + oy, sy = Math.min(h - 1, Math.max(0, yy + dy));
        for (let ox = -1; ox <= 1; ox++) {
          const xx = x + ox, sx = Math.min(w - 1, Math.max(0, xx + dx));
          sum += pixelDiff(a, b, yy * w + xx, sy * w + sx);
        }
      }
      return sum / 9;
    };
    const unshifted = block(0, 0, Infinity);
    let best = Math.min(unshifted * GAIN, EXPLAINED), bestDx = 0, bestDy = 0;
    for (let k = 0; k < shifts.length; k += 2) {
      const mean = block(shifts[k]!, shifts[k + 1]!, best * 9);
      if (mean < best) { best = mean; bestDx = shifts[k]!; bestDy = shifts[k + 1]!; }
    }
    if (bestDx === 0 && bestDy === 0) continue;
    const q = Math.min(h - 1, Math.max(0, y + bestDy)) * w + Math.min(w - 1, Math.max(0, x + bestDx));
    out ??= { ...plate, data: plate.data.slice() };
    for (let c = 0; c < 3; c++) out.data[p * 3 + c] = b[q * 3 + c]!;
    realigned++;
  }
  return { plate: out ?? plate, report: { edgePixels: looked, realigned } };
}
