/**
 * Push-pull colour propagation (Gortler et al. 1996): fills every pixel with a smooth
 * extrapolation of the colours where `weight` > 0, in O(pixels). Used to estimate foreground and
 * background colours away from where they are observed. Written by hand because neither OpenCV.js
 * (its inpainting takes 8-bit images and costs O(pixels·radius)) nor sharp offers masked
 * pyramidal interpolation.
 */
import type { ImageF32, Plane } from '../image.js';
import { f32 } from '../alloc.js';

interface Level { w: number; h: number; sum: Float32Array; weight: Float32Array }

export function pushPull(image: ImageF32, weight: Plane): ImageF32 {
  const ch = image.channels;
  const levels: Level[] = [];
  let cur: Level = { w: image.width, h: image.height, sum: f32(image.data.length), weight: f32(weight.data.length) };
  for (let p = 0; p < weight.data.length; p++) {
    const wt = weight.data[p]!;
    cur.weight[p] = wt;
    for (let c = 0; c < ch; c++) cur.sum[p * ch + c] = image.data[p * ch + c]! * wt;
  }
  levels.push(cur);
  // Push: halve until the top level has some weight everywhere or is a single pixel.
  while (cur.w > 1 || cur.h > 1) {
    const w = Math.max(1, Math.ceil(cur.w / 2)), h = Math.max(1, Math.ceil(cur.h / 2));
    const next: Level = { w, h, sum: f32(w * h * ch), weight: f32(w * h) };
    for (let y = 0; y < cur.h; y++) {
      const ny = y >> 1;
      for (let x = 0; x < cur.w; x++) {
        const p = y * cur.w + x, q = ny * w + (x >> 1);
        next.weight[q]! += cur.weight[p]!;
        for (let c = 0; c < ch; c++) next.sum[q * ch + c]! += cur.sum[p * ch + c]!;
      }
    }
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
    for (let y = 0; y < L.h; y++) {
      const cy = Math.min(C.h - 1, Math.max(0, (y - 0.5) / 2));
      const y0 = Math.floor(cy), y1 = Math.min(C.h - 1, y0 + 1), fy = cy - y0;
      for (let x = 0; x < L.w; x++) {
        const cx = Math.min(C.w - 1, Math.max(0, (x - 0.5) / 2));
        const x0 = Math.floor(cx), x1 = Math.min(C.w - 1, x0 + 1), fx = cx - x0;
        const p = y * L.w + x;
        const wt = L.weight[p]!;
        const a = Math.min(1, wt);
        for (let c = 0; c < ch; c++) {
          const up = (1 - fy) * ((1 - fx) * colour[(y0 * C.w + x0) * ch + c]! + fx * colour[(y0 * C.w + x1) * ch + c]!)
            + fy * ((1 - fx) * colour[(y1 * C.w + x0) * ch + c]! + fx * colour[(y1 * C.w + x1) * ch + c]!);
          const own = wt > 0 ? L.sum[p * ch + c]! / wt : 0;
          out[p * ch + c] = a * own + (1 - a) * up;
        }
      }
    }
    colour = out;
  }
  return { width: image.width, height: image.height, channels: ch, data: colour };
}
