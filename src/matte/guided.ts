/**
 * Colour-guided filter (He, Sun, Tang 2010): an edge-aware smoothing of a plane that follows the
 * edges of a colour guide, used to refine and upsample alpha. OpenCV.js's build has no ximgproc
 * module, so this is written on top of its box filter.
 */
import { createImage, createPlane, cropRect, supportRect, type ImageF32, type Plane } from '../image.js';
import { resize } from '../ops.js';
import { cv, withMats } from '../cv.js';
import { f32, f32Copy } from '../alloc.js';

/**
 * The filter's local linear coefficients, box-averaged, (a0, a1, a2, b) interleaved: q = mA·I + mB.
 * The thirteen box-filtered products are packed four to a CV_32FC4 Mat: four box filters instead
 * of thirteen, written and read in place in OpenCV's memory (no plane per product, no copies in
 * and out).
 */
export function coefficients(guide: ImageF32, input: Plane, radius: number, eps: number): Float32Array {
  const { width: w, height: h } = input;
  if (h <= 2 * COEFF_STRIP_ROWS) return coefficientsWhole(guide, input, radius, eps);
  // Ten four-float Mats a pixel (~160 B) would all sit in OpenCV's heap at once, which keeps its
  // high-water mark for good (a 4K photo's band box: over 100 MB). In strips of rows with a halo
  // of two box radii (two box filters in a row), each row sees the same neighbourhood as in the
  // whole: the same coefficients in a bounded heap.
  const out = f32(w * h * 4);
  const halo = 2 * radius;
  for (let y0 = 0; y0 < h; y0 += COEFF_STRIP_ROWS) {
    const y1 = Math.min(h, y0 + COEFF_STRIP_ROWS), a = Math.max(0, y0 - halo), b = Math.min(h, y1 + halo);
    const g = { width: w, height: b - a, channels: 3, data: guide.data.subarray(a * w * 3, b * w * 3) };
    const v = { width: w, height: b - a, channels: 1, data: input.data.subarray(a * w, b * w) } as Plane;
    out.set(coefficientsWhole(g, v, radius, eps).subarray((y0 - a) * w * 4, (y1 - a) * w * 4), y0 * w * 4);
  }
  return out;
}

/** Rows per strip of `coefficients` on a tall plane. */
const COEFF_STRIP_ROWS = 256;

/** `coefficients` over the whole plane at once (what the strips must equal). */
export function coefficientsWhole(guide: ImageF32, input: Plane, radius: number, eps: number): Float32Array {
  const c = cv();
  const { width: w, height: h } = input;
  const k = 2 * radius + 1;
  return withMats((t) => {
    const mats = [0, 1, 2, 3].map(() => t(new c.Mat(h, w, c.CV_32FC4)));
    const [m0, m1, m2, m3] = mats.map((m) => m.data32F as Float32Array) as [Float32Array, Float32Array, Float32Array, Float32Array];
    packProducts(guide.data, input.data, m0, m1, m2, m3);
    const size = new c.Size(k, k), anchor = new c.Point(-1, -1);
    const means = mats.map((m) => { const d = t(new c.Mat()); c.blur(m, d, size, anchor, c.BORDER_REFLECT); return d.data32F as Float32Array; });
    const [b0, b1, b2, b3] = means as [Float32Array, Float32Array, Float32Array, Float32Array];
    const ab = t(new c.Mat(h, w, c.CV_32FC4));
    solveCoefficients(b0, b1, b2, b3, ab.data32F as Float32Array, eps);
    const mean = t(new c.Mat());
    c.blur(ab, mean, size, anchor, c.BORDER_REFLECT);
    return f32Copy(mean.data32F as Float32Array);
  });
}

/*
 * The two per-pixel passes are functions of their own, not loops inside the closure that withMats
 * runs: V8 compiled such a closure's hot loops again on almost every call (a trace of a 48-frame
 * video: dozens of recompilations, ~1 s of a core).
 */

/** The guide's and input's products, four to a pixel in each of m0..m3 (the thirteen box-filtered quantities). */
function packProducts(g: Float32Array, v: Float32Array, m0: Float32Array, m1: Float32Array, m2: Float32Array, m3: Float32Array): void {
  const n = v.length;
  for (let p = 0, o = 0; p < n; p++, o += 4) {
    const i0 = g[p * 3]!, i1 = g[p * 3 + 1]!, i2 = g[p * 3 + 2]!, x = v[p]!;
    m0[o] = i0; m0[o + 1] = i1; m0[o + 2] = i2; m0[o + 3] = x;
    m1[o] = i0 * x; m1[o + 1] = i1 * x; m1[o + 2] = i2 * x; m1[o + 3] = i0 * i0;
    m2[o] = i0 * i1; m2[o + 1] = i0 * i2; m2[o + 2] = i1 * i1; m2[o + 3] = i1 * i2;
    m3[o] = i2 * i2;
  }
}

/** Each pixel's (a0, a1, a2, b) from the box means, by Cramer's rule on the regularised 3x3 covariance. */
function solveCoefficients(b0: Float32Array, b1: Float32Array, b2: Float32Array, b3: Float32Array, out: Float32Array, eps: number): void {
  const n = out.length >> 2;
  for (let p = 0, o = 0; p < n; p++, o += 4) {
    const mi0 = b0[o]!, mi1 = b0[o + 1]!, mi2 = b0[o + 2]!, mp = b0[o + 3]!;
    const c0 = b1[o]! - mi0 * mp, c1 = b1[o + 1]! - mi1 * mp, c2 = b1[o + 2]! - mi2 * mp;
    const s00 = b1[o + 3]! - mi0 * mi0 + eps, s01 = b2[o]! - mi0 * mi1, s02 = b2[o + 1]! - mi0 * mi2;
    const s11 = b2[o + 2]! - mi1 * mi1 + eps, s12 = b2[o + 3]! - mi1 * mi2, s22 = b3[o]! - mi2 * mi2 + eps;
    const i00 = s11 * s22 - s12 * s12, i01 = s02 * s12 - s01 * s22, i02 = s01 * s12 - s02 * s11;
    const i11 = s00 * s22 - s02 * s02, i12 = s01 * s02 - s00 * s12, i22 = s00 * s11 - s01 * s01;
    const det = s00 * i00 + s01 * i01 + s02 * i02;
    const a0 = (i00 * c0 + i01 * c1 + i02 * c2) / det, a1 = (i01 * c0 + i11 * c1 + i12 * c2) / det, a2 = (i02 * c0 + i12 * c1 + i22 * c2) / det;
    out[o] = a0; out[o + 1] = a1; out[o + 2] = a2; out[o + 3] = mp - a0 * mi0 - a1 * mi1 - a2 * mi2;
  }
}

export function guidedFilterWhole(guide: ImageF32, input: Plane, radius: number, eps: number): Plane {
  const m = coefficients(guide, input, radius, eps);
  const out = createPlane(input.width, input.height);
  for (let i = 0; i < input.data.length; i++) {
    const v = m[i * 4]! * guide.data[i * 3]! + m[i * 4 + 1]! * guide.data[i * 3 + 1]! + m[i * 4 + 2]! * guide.data[i * 3 + 2]! + m[i * 4 + 3]!;
    out.data[i] = v < 0 ? 0 : v > 1 ? 1 : v;
  }
  return out;
}

const STRIP_ROWS = 256;

/**
 * The filter holds about 40 floats a pixel at once; on a 4K frame that is over 1 GB. Its
 * output at a pixel depends only on a (4r+1)^2 neighbourhood, so large images are filtered in
 * strips of rows with a 2r overlap, which bounds memory and gives the same result.
 * With `where`, only the box around its pixels is filtered (same result there); pixels outside that
 * box keep their input value, which spares a subject's engine the rest of the frame.
 */
export function guidedFilter(guide: ImageF32, input: Plane, radius: number, eps: number, where?: Plane): Plane {
  const halo = 2 * radius;
  const box = where ? supportRect(where, 0.5) : [0, 0, input.width, input.height];
  if (!box) return { ...input, data: f32Copy(input.data) };
  const x0 = Math.max(0, box[0]! - halo), x1 = Math.min(input.width, box[2]! + halo);
  const top = Math.max(0, box[1]! - halo), bottom = Math.min(input.height, box[3]! + halo);
  const whole = x0 === 0 && x1 === input.width && top === 0 && bottom === input.height;
  if (whole && input.height <= STRIP_ROWS * 2) return guidedFilterWhole(guide, input, radius, eps);
  const out = whole ? createPlane(input.width, input.height) : { ...input, data: f32Copy(input.data) };
  const w = x1 - x0;
  for (let y0 = top; y0 < bottom; y0 += STRIP_ROWS) {
    const y1 = Math.min(bottom, y0 + STRIP_ROWS);
    const a = Math.max(0, y0 - halo), b = Math.min(input.height, y1 + halo);
    const strip = guidedFilterWhole(cropRect(guide, x0, a, x1, b), cropRect(input, x0, a, x1, b), radius, eps);
    for (let y = y0; y < y1; y++) out.data.set(strip.data.subarray((y - a) * w, (y - a + 1) * w), y * input.width + x0);
  }
  return out;
}

/**
 * The rectangle [x0, x1) × [y0, y1) of `image` shrunk to half size by 2x2 means: what OpenCV's area
 * resize computes for an exact factor of two, read straight from the whole image (no crop copied
 * out and into OpenCV's memory and back). The rectangle's sides must be even.
 */
export function halveRect<T extends ImageF32>(image: T, x0: number, y0: number, x1: number, y1: number): T {
  const c = image.channels, w = image.width;
  const sw = (x1 - x0) >> 1, sh = (y1 - y0) >> 1;
  const out = createImage(sw, sh, c);
  const d = image.data, o = out.data;
  for (let y = 0; y < sh; y++) {
    const r0 = ((y0 + 2 * y) * w + x0) * c, r1 = r0 + w * c;
    for (let x = 0, q = y * sw * c; x < sw; x++) {
      for (let k = 0; k < c; k++, q++) {
        const a = r0 + 2 * x * c + k;
        o[q] = (d[a]! + d[a + c]! + d[r1 - r0 + a]! + d[r1 - r0 + a + c]!) * 0.25;
      }
    }
  }
  return out as T;
}

/**
 * The fast guided filter (He and Sun 2015): the coefficients are computed on the guide and input
 * shrunk by `step` (box means of a smaller radius), enlarged bilinearly, and applied to the
 * full-resolution guide, only at the pixels of `where` (the others keep their input value).
 * Costs about 1/step² of the exact filter; the coefficients are smooth, so little is lost.
 * `where` is a plane (1 where to filter), or those pixels as a list in raster order with their
 * bounding box, when the caller has one: then only they are visited. `inPlace`: the result is
 * written into `input` (every input value is read before any is written), not into a copy.
 */
export function guidedFilterFast(guide: ImageF32, input: Plane, radius: number, eps: number, where: Plane | BandPixels, step = 2, inPlace = false): Plane {
  const listed = 'list' in where ? where : undefined;
  const box = listed ? listed.box : supportRect(where as Plane, 0.5);
  const out = inPlace ? input : { ...input, data: f32Copy(input.data) };
  if (!box) return out;
  const halo = 2 * radius + 2 * step;
  let x0 = Math.max(0, box[0] - halo), x1 = Math.min(input.width, box[2] + halo);
  let y0 = Math.max(0, box[1] - halo), y1 = Math.min(input.height, box[3] + halo);
  // Halving reads 2x2 blocks: even sides, one more column or row of context where the image has it.
  if (step === 2) {
    if ((x1 - x0) % 2) { if (x1 < input.width) x1++; else if (x0 > 0) x0--; }
    if ((y1 - y0) % 2) { if (y1 < input.height) y1++; else if (y0 > 0) y0--; }
  }
  const cw = x1 - x0, ch = y1 - y0;
  const halve = step === 2 && cw % 2 === 0 && ch % 2 === 0;
  const sw = halve ? cw / 2 : Math.max(1, Math.round(cw / step)), sh = halve ? ch / 2 : Math.max(1, Math.round(ch / step));
  const g = halve ? halveRect(guide, x0, y0, x1, y1) : resize(cropRect(guide, x0, y0, x1, y1), sw, sh);
  const p = halve ? halveRect(input, x0, y0, x1, y1) : resize(cropRect(input, x0, y0, x1, y1), sw, sh);
  const m = coefficients(g, p, Math.max(1, Math.round(radius / step)), eps);
  const sx = sw / cw, sy = sh / ch;
  // Each column's and row's bilinear taps on the coefficient grid, once.
  const cx0 = new Int32Array(cw), cx1 = new Int32Array(cw), cfx = new Float32Array(cw);
  for (let x = 0; x < cw; x++) { const u = Math.min(sw - 1, Math.max(0, (x + 0.5) * sx - 0.5)); cx0[x] = Math.floor(u); cx1[x] = Math.min(sw - 1, cx0[x]! + 1); cfx[x] = u - cx0[x]!; }
  const ry0 = new Int32Array(ch), ry1 = new Int32Array(ch), rfy = new Float32Array(ch);
  for (let y = 0; y < ch; y++) { const v = Math.min(sh - 1, Math.max(0, (y + 0.5) * sy - 0.5)); ry0[y] = Math.floor(v); ry1[y] = Math.min(sh - 1, ry0[y]! + 1); rfy[y] = v - ry0[y]!; }
  const taps: Taps = { m, sw, cx0, cx1, cfx, ry0, ry1, rfy };
  const width = input.width;
  if (listed) {
    const pixels = listed.list;
    for (let i = 0; i < pixels.length; i++) { const q = pixels[i]!, y = Math.floor(q / width), x = q - y * width; applyAt(taps, guide.data, out.data, q, x - x0, y - y0); }
    return out;
  }
  const mask = (where as Plane).data;
  for (let y = y0; y < y1; y++) {
    for (let x = x0, q = y * width + x0; x < x1; x++, q++) if (mask[q]! > 0.5) applyAt(taps, guide.data, out.data, q, x - x0, y - y0);
  }
  return out;
}

/** Pixels to filter as a list (indices in raster order) and their bounding box [x0, y0, x1, y1) (undefined when none). */
export interface BandPixels { list: Int32Array; box: [number, number, number, number] | undefined }

/** The coefficient grid and each column's and row's bilinear taps on it. */
interface Taps { m: Float32Array; sw: number; cx0: Int32Array; cx1: Int32Array; cfx: Float32Array; ry0: Int32Array; ry1: Int32Array; rfy: Float32Array }

/** The filtered value at pixel q (column x, row y of the box): the enlarged coefficients applied to the full-resolution guide. */
function applyAt(t: Taps, gd: Float32Array, od: Float32Array, q: number, x: number, y: number): void {
  const { m, sw } = t;
  const fy = t.rfy[y]!, fx = t.cfx[x]!, r0 = t.ry0[y]! * sw, r1 = t.ry1[y]! * sw;
  const k00 = (r0 + t.cx0[x]!) * 4, k01 = (r0 + t.cx1[x]!) * 4, k10 = (r1 + t.cx0[x]!) * 4, k11 = (r1 + t.cx1[x]!) * 4;
  const w00 = (1 - fy) * (1 - fx), w01 = (1 - fy) * fx, w10 = fy * (1 - fx), w11 = fy * fx;
  const val = (w00 * m[k00]! + w01 * m[k01]! + w10 * m[k10]! + w11 * m[k11]!) * gd[q * 3]!
    + (w00 * m[k00 + 1]! + w01 * m[k01 + 1]! + w10 * m[k10 + 1]! + w11 * m[k11 + 1]!) * gd[q * 3 + 1]!
    + (w00 * m[k00 + 2]! + w01 * m[k01 + 2]! + w10 * m[k10 + 2]! + w11 * m[k11 + 2]!) * gd[q * 3 + 2]!
    + (w00 * m[k00 + 3]! + w01 * m[k01 + 3]! + w10 * m[k10 + 3]! + w11 * m[k11 + 3]!);
  od[q] = val < 0 ? 0 : val > 1 ? 1 : val;
}
