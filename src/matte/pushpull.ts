/**
 * Push-pull colour propagation (Gortler et al. 1996): fills every pixel with a smooth
 * extrapolation of the colours where `weight` > 0, in O(pixels). Used to estimate foreground and
 * background colours away from where they are observed. Written by hand because neither OpenCV.js
 * (its inpainting takes 8-bit images and costs O(pixels·radius)) nor sharp offers masked
 * pyramidal interpolation.
 */
import type { ImageF32, Plane } from '../image.js';
import { f32 } from '../alloc.js';

/**
 * `out` = the image's samples times their pixel's weight: push-pull's finest level, and the
 * premultiplied image foreground.ts's propagateCoarse shrinks. Its own function, with the arrays as
 * arguments and three channels unrolled: as a loop inside propagateCoarse it was the estimate's
 * hottest line, ~1.3 ms a call at 512x288 (~0.4 ms now; the engine's decisions call it twice a frame).
 */
export function premultiply(image: Float32Array, weights: Float32Array, out: Float32Array, ch: number): void {
  if (ch !== 3) {
    for (let p = 0; p < weights.length; p++) for (let c = 0; c < ch; c++) out[p * ch + c] = image[p * ch + c]! * weights[p]!;
    return;
  }
  for (let p = 0, i = 0; p < weights.length; p++, i += 3) {
    const wt = weights[p]!;
    out[i] = image[i]! * wt; out[i + 1] = image[i + 1]! * wt; out[i + 2] = image[i + 2]! * wt;
  }
}

interface Level { w: number; h: number; sum: Float32Array; weight: Float32Array }

export function pushPull(image: ImageF32, weight: Plane): ImageF32 {
  const ch = image.channels;
  const levels: Level[] = [];
  let cur: Level = { w: image.width, h: image.height, sum: f32(image.data.length), weight: f32(weight.data.length) };
  cur.weight.set(weight.data);
  premultiply(image.data, weight.data, cur.sum, ch);
  levels.push(cur);
  // Push: halve until the top level has some weight everywhere or is a single pixel.
  while (cur.w > 1 || cur.h > 1) {
    const w = Math.max(1, Math.ceil(cur.w / 2)), h = Math.max(1, Math.ceil(cur.h / 2));
    const next: Level = { w, h, sum: f32(w * h * ch), weight: f32(w * h) };
    ch === 3 ? push3(cur, next) : push(cur, next, ch);
    levels.push(next);
    cur = next;
  }
  // Top level: mean colour (or 0.5 grey when nothing was observed at all).
  const top = levels[levels.length - 1]!;
  let colour = f32(top.w * top.h * ch);
  for (let q = 0; q < top.w * top.h; q++) {
    for (let c = 0; c < ch; c++) colour[q * ch + c] = top.weight[q]! > 0 ? top.sum[q * ch + c]! / top.weight[q]! : 0.5;
  }
  // Pull: blend each level's own estimate with the coarser one by how much it saw (capped at 1).
  for (let l = levels.length - 2; l >= 0; l--) {
    const L = levels[l]!, C = levels[l + 1]!;
    const out = f32(L.w * L.h * ch);
    pull(L, C, colour, out, ch);
    colour = out;
  }
  return { width: image.width, height: image.height, channels: ch, data: colour };
}

/**
 * One push step: each coarse pixel the sum of the (up to) four fine pixels above it, added in the
 * fine level's raster order (row 2y then 2y+1, each left to right) in float32, as accumulating
 * into the coarse level's arrays pixel by pixel would.
 */
function push(cur: Level, next: Level, ch: number): void {
  for (let y = 0; y < cur.h; y++) {
    const ny = y >> 1;
    for (let x = 0; x < cur.w; x++) {
      const p = y * cur.w + x, q = ny * next.w + (x >> 1);
      next.weight[q]! += cur.weight[p]!;
      for (let c = 0; c < ch; c++) next.sum[q * ch + c]! += cur.sum[p * ch + c]!;
    }
  }
}

/** `push` for three channels, each coarse pixel summed at once (the same additions in the same order). */
function push3(cur: Level, next: Level): void {
  const fw = cur.w, fh = cur.h, w = next.w, h = next.h, fs = cur.sum, fwt = cur.weight, ns = next.sum, nwt = next.weight;
  const f = Math.fround;
  for (let y = 0; y < h; y++) {
    const r0 = 2 * y * fw, two = 2 * y + 1 < fh, r1 = two ? r0 + fw : r0;
    for (let x = 0, q = y * w; x < w; x++, q++) {
      const a = r0 + 2 * x, wide = 2 * x + 1 < fw;
      // Terms in the order the raster visits them: (2y, 2x), (2y, 2x+1), (2y+1, 2x), (2y+1, 2x+1).
      let sw = fwt[a]!, s0 = fs[a * 3]!, s1 = fs[a * 3 + 1]!, s2 = fs[a * 3 + 2]!;
      if (wide) { sw = f(sw + fwt[a + 1]!); s0 = f(s0 + fs[a * 3 + 3]!); s1 = f(s1 + fs[a * 3 + 4]!); s2 = f(s2 + fs[a * 3 + 5]!); }
      if (two) {
        const b = r1 + 2 * x;
        sw = f(sw + fwt[b]!); s0 = f(s0 + fs[b * 3]!); s1 = f(s1 + fs[b * 3 + 1]!); s2 = f(s2 + fs[b * 3 + 2]!);
        if (wide) { sw = f(sw + fwt[b + 1]!); s0 = f(s0 + fs[b * 3 + 3]!); s1 = f(s1 + fs[b * 3 + 4]!); s2 = f(s2 + fs[b * 3 + 5]!); }
      }
      nwt[q] = sw; ns[q * 3] = s0; ns[q * 3 + 1] = s1; ns[q * 3 + 2] = s2;
    }
  }
}

/** The coarse level's taps (index of the two neighbours and the weight of the second) for each fine row or column. */
function taps(n: number, coarse: number): { i0: Int32Array; i1: Int32Array; f: Float64Array } {
  const i0 = new Int32Array(n), i1 = new Int32Array(n), f = new Float64Array(n);
  for (let x = 0; x < n; x++) {
    const cx = Math.min(coarse - 1, Math.max(0, (x - 0.5) / 2));
    i0[x] = Math.floor(cx); i1[x] = Math.min(coarse - 1, i0[x]! + 1); f[x] = cx - i0[x]!;
  }
  return { i0, i1, f };
}

/**
 * One pull step: the level's own estimate blended with the coarser one enlarged bilinearly, each
 * row's and column's taps on the coarser level computed once.
 */
function pull(L: Level, C: Level, colour: Float32Array, out: Float32Array, ch: number): void {
  const cols = taps(L.w, C.w), rows = taps(L.h, C.h);
  const cw = C.w, sum = L.sum, weight = L.weight;
  for (let y = 0; y < L.h; y++) {
    const r0 = rows.i0[y]! * cw, r1 = rows.i1[y]! * cw, fy = rows.f[y]!;
    for (let x = 0, p = y * L.w; x < L.w; x++, p++) {
      const fx = cols.f[x]!, k00 = (r0 + cols.i0[x]!) * ch, k01 = (r0 + cols.i1[x]!) * ch, k10 = (r1 + cols.i0[x]!) * ch, k11 = (r1 + cols.i1[x]!) * ch;
      const wt = weight[p]!;
      const a = Math.min(1, wt);
      for (let c = 0; c < ch; c++) {
        const up = (1 - fy) * ((1 - fx) * colour[k00 + c]! + fx * colour[k01 + c]!)
          + fy * ((1 - fx) * colour[k10 + c]! + fx * colour[k11 + c]!);
        const own = wt > 0 ? sum[p * ch + c]! / wt : 0;
        out[p * ch + c] = a * own + (1 - a) * up;
      }
    }
  }
}
