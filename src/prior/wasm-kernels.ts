/**
 * Concat and Slice (and, below, the dilated convolutions' SpaceToBatchND and BatchToSpaceND) for
 * TF.js's WebAssembly backend, registered over its own (tfjs 4.22). Concat and Slice
 * (and SplitV, slices) are plain JavaScript, not WebAssembly: Concat copies with one `subarray().set()` per
 * pixel and input, and Slice first copies its whole input out of the heap (`readSync`) and then
 * does the same per pixel. RVM concatenates and splits channels (NHWC, the last axis: a few to a few
 * dozen floats a pixel) dozens of times a frame, and at 384–512 px those per-pixel views took about
 * a fifth of the prior's time (cpu profile: `concat` and `slice4d` over 90 ms of a ~430 ms frame).
 * The tfjs wasm backend has no faster variant to choose and no option for it, so these copy short
 * runs with a loop and long ones with one `set`, reading the inputs where they are on the heap.
 * The values are copied, never computed: outputs are bit-identical. Strings go to the original.
 */
import type * as TF from '@tensorflow/tfjs-core';
import { tf } from '../platform/tfjs.js';

type Values = Float32Array | Int32Array | Uint8Array;
type KernelArgs = Parameters<TF.KernelFunc>[0];

/** The part of tfjs-backend-wasm's BackendWasm that the kernels use. */
interface WasmBackend {
  makeOutput(shape: number[], dtype: TF.DataType): TF.TensorInfo;
  typedArrayFromHeap(t: TF.TensorInfo): Values;
}

/** Below this many elements a loop copies faster than a view and `set`. */
const SHORT_RUN = 64;

function copyRun(src: Values, from: number, dst: Values, to: number, n: number): void {
  if (n < SHORT_RUN) for (let k = 0; k < n; k++) dst[to + k] = src[from + k]!;
  else dst.set(src.subarray(from, from + n), to);
}

function concat(args: KernelArgs, original: TF.KernelFunc): TF.TensorInfo | TF.TensorInfo[] {
  const inputs = args.inputs as unknown as TF.TensorInfo[];
  const backend = args.backend as unknown as WasmBackend;
  const first = inputs[0]!;
  const nonEmpty = inputs.filter((t) => tf.util.sizeFromShape(t.shape) > 0);
  if (first.dtype === 'string' || nonEmpty.length < 2) return original(args);
  const axis = tf.util.parseAxisParam((args.attrs as { axis: number }).axis, first.shape)[0]!;
  const shapes = inputs.map((t) => t.shape);
  tf.backend_util.assertParamsConsistent(shapes, axis);
  const out = backend.makeOutput(tf.backend_util.computeOutShape(shapes, axis), first.dtype);
  // After makeOutput: a growing heap detaches views taken before it.
  const outVals = backend.typedArrayFromHeap(out);
  const vals = nonEmpty.map((t) => backend.typedArrayFromHeap(t));
  const inner = nonEmpty.map((t) => tf.util.sizeFromShape(t.shape.slice(axis)));
  const outer = tf.util.sizeFromShape(first.shape.slice(0, axis));
  // Each input in turn into its columns of every outer row: a strided copy per input, not a call
  // per row and input (RVM concatenates runs of 1 and 3 channels over whole frames).
  const total = inner.reduce((a, b) => a + b, 0);
  for (let i = 0, offset = 0; i < vals.length; offset += inner[i]!, i++) copyStrided(vals[i]!, inner[i]!, outVals, offset, total, outer);
  return out;
}

/** `rows` runs of `n` values from `src` (packed) into `dst` at `to`, `stride` apart. */
function copyStrided(src: Values, n: number, dst: Values, to: number, stride: number, rows: number): void {
  if (n === stride) { dst.set(src.subarray(0, n * rows), to); return; }
  if (n >= SHORT_RUN) { for (let b = 0; b < rows; b++) dst.set(src.subarray(b * n, b * n + n), to + b * stride); return; }
  if (n === 1) { for (let b = 0, o = to; b < rows; b++, o += stride) dst[o] = src[b]!; return; }
  if (n === 3) { for (let b = 0, k = 0, o = to; b < rows; b++, k += 3, o += stride) { dst[o] = src[k]!; dst[o + 1] = src[k + 1]!; dst[o + 2] = src[k + 2]!; } return; }
  for (let b = 0, k = 0, o = to; b < rows; b++, o += stride) for (let e = 0; e < n; e++) dst[o + e] = src[k++]!;
}

/** x[begin : begin + size] into a new output (rank ≤ 4), run by run along the last axis. */
function copySlice(backend: WasmBackend, x: TF.TensorInfo, begin: number[], size: number[]): TF.TensorInfo {
  const out = backend.makeOutput(size, x.dtype);
  const outVals = backend.typedArrayFromHeap(out), xVals = backend.typedArrayFromHeap(x);
  // As four dimensions (leading ones added).
  const pad = 4 - x.shape.length;
  const shape = [...Array<number>(pad).fill(1), ...x.shape];
  const b = [...Array<number>(pad).fill(0), ...begin], s = [...Array<number>(pad).fill(1), ...size];
  const s3 = shape[3]!, s2 = shape[2]! * s3, s1 = shape[1]! * s2;
  let o = 0;
  // Whole rows of the last axis are contiguous: one strided copy per (i, j) of all its k, and one
  // `set` when the rows are whole (RVM slices whole tensors too); the output is packed.
  for (let i = b[0]!; i < b[0]! + s[0]!; i++) for (let j = b[1]!; j < b[1]! + s[1]!; j++) {
    const from = i * s1 + j * s2 + b[2]! * s3 + b[3]!;
    gatherStrided(xVals, from, s3, s[3]!, outVals, o, s[2]!);
    o += s[2]! * s[3]!;
  }
  return out;
}

/** `rows` runs of `n` values, `stride` apart in `src` from `from`, packed into `dst` at `to`. */
function gatherStrided(src: Values, from: number, stride: number, n: number, dst: Values, to: number, rows: number): void {
  if (n === stride) { dst.set(src.subarray(from, from + n * rows), to); return; }
  if (n >= SHORT_RUN) { for (let b = 0; b < rows; b++) dst.set(src.subarray(from + b * stride, from + b * stride + n), to + b * n); return; }
  if (n === 1) { for (let b = 0, k = from; b < rows; b++, k += stride) dst[to + b] = src[k]!; return; }
  if (n === 3) { for (let b = 0, k = from, o = to; b < rows; b++, k += stride, o += 3) { dst[o] = src[k]!; dst[o + 1] = src[k + 1]!; dst[o + 2] = src[k + 2]!; } return; }
  for (let b = 0, k = from, o = to; b < rows; b++, k += stride) for (let e = 0; e < n; e++) dst[o++] = src[k + e]!;
}

function slice(args: KernelArgs, original: TF.KernelFunc): TF.TensorInfo | TF.TensorInfo[] {
  const x = (args.inputs as { x: TF.TensorInfo }).x;
  if (x.dtype === 'string' || x.shape.length > 4) return original(args);
  const attrs = args.attrs as { begin: number | number[]; size?: number | number[] };
  const [begin, size] = tf.slice_util.parseSliceParams(x as TF.TensorInfo as TF.Tensor, attrs.begin, attrs.size);
  return copySlice(args.backend as unknown as WasmBackend, x, begin, size);
}

/** SplitV (tf.split, RVM's ConvGRU gates) is slices along an axis; the backend's calls its own slice directly. */
function splitV(args: KernelArgs, original: TF.KernelFunc): TF.TensorInfo | TF.TensorInfo[] {
  const x = (args.inputs as { x: TF.TensorInfo }).x;
  if (x.dtype === 'string' || x.shape.length > 4) return original(args);
  const attrs = args.attrs as { numOrSizeSplits: number | number[]; axis: number };
  const axis = tf.util.parseAxisParam(attrs.axis, x.shape)[0]!;
  const sizes = tf.backend_util.prepareSplitSize(x as TF.TensorInfo as TF.Tensor, attrs.numOrSizeSplits, axis);
  const begin = new Array<number>(x.shape.length).fill(0);
  return sizes.map((s) => {
    const size = [...x.shape];
    size[axis] = s;
    const part = copySlice(args.backend as unknown as WasmBackend, x, begin, size);
    begin[axis]! += s;
    return part;
  });
}

/**
 * SpaceToBatchND and BatchToSpaceND (4-D NHWC, a 2-D block): how TensorFlow expresses a dilated
 * convolution (RVM's backbone has three: 1x15x20x672-960 at 384x224), and in the wasm backend a
 * pad, a 6-D transpose and reshapes in JavaScript, 12-19 ms each (a third of the whole prior's
 * kernel time in tf.profile). Both only move runs of C channels: one `set` per output pixel here.
 */
function spaceToBatch(args: KernelArgs, original: TF.KernelFunc): TF.TensorInfo | TF.TensorInfo[] {
  const x = (args.inputs as { x: TF.TensorInfo }).x;
  const { blockShape, paddings } = args.attrs as { blockShape: number[]; paddings: number[][] };
  if (x.dtype === 'string' || x.shape.length !== 4 || blockShape.length !== 2) return original(args);
  const [batch, height, width, channels] = x.shape as [number, number, number, number];
  const [bh, bw] = blockShape as [number, number];
  const [[top, bottom], [left, right]] = paddings as [[number, number], [number, number]];
  const oh = (height + top + bottom) / bh, ow = (width + left + right) / bw;
  const backend = args.backend as unknown as WasmBackend;
  const out = backend.makeOutput([batch * bh * bw, oh, ow, channels], x.dtype);
  const outVals = backend.typedArrayFromHeap(out), xVals = backend.typedArrayFromHeap(x);
  outVals.fill(0);
  for (let i = 0; i < bh; i++) for (let j = 0; j < bw; j++) for (let b = 0; b < batch; b++) {
    const ob = (i * bw + j) * batch + b;
    for (let y = 0; y < oh; y++) {
      const sy = y * bh + i - top;
      if (sy < 0 || sy >= height) continue;
      for (let xx = 0; xx < ow; xx++) {
        const sx = xx * bw + j - left;
        if (sx < 0 || sx >= width) continue;
        copyRun(xVals, ((b * height + sy) * width + sx) * channels, outVals, ((ob * oh + y) * ow + xx) * channels, channels);
      }
    }
  }
  return out;
}

function batchToSpace(args: KernelArgs, original: TF.KernelFunc): TF.TensorInfo | TF.TensorInfo[] {
  const x = (args.inputs as { x: TF.TensorInfo }).x;
  const { blockShape, crops } = args.attrs as { blockShape: number[]; crops: number[][] };
  if (x.dtype === 'string' || x.shape.length !== 4 || blockShape.length !== 2) return original(args);
  const [inBatch, height, width, channels] = x.shape as [number, number, number, number];
  const [bh, bw] = blockShape as [number, number];
  const [[top, bottom], [left, right]] = crops as [[number, number], [number, number]];
  const batch = inBatch / (bh * bw), oh = height * bh - top - bottom, ow = width * bw - left - right;
  const backend = args.backend as unknown as WasmBackend;
  const out = backend.makeOutput([batch, oh, ow, channels], x.dtype);
  const outVals = backend.typedArrayFromHeap(out), xVals = backend.typedArrayFromHeap(x);
  for (let b = 0; b < batch; b++) for (let y = 0; y < oh; y++) {
    const sy = y + top, i = sy % bh, iy = (sy - i) / bh;
    for (let xx = 0; xx < ow; xx++) {
      const sx = xx + left, j = sx % bw, ix = (sx - j) / bw;
      copyRun(xVals, ((((i * bw + j) * batch + b) * height + iy) * width + ix) * channels, outVals, ((b * oh + y) * ow + xx) * channels, channels);
    }
  }
  return out;
}

let registered = false;

/** Registers these kernels over the wasm backend's own (once; call after the backend is set). */
export function registerWasmCopyKernels(): void {
  if (registered) return;
  registered = true;
  for (const [name, fn] of [[tf.Concat, concat], [tf.Slice, slice], [tf.SplitV, splitV], [tf.SpaceToBatchND, spaceToBatch], [tf.BatchToSpaceND, batchToSpace]] as const) {
    const original = tf.getKernel(name, 'wasm');
    if (!original) continue;
    tf.unregisterKernel(name, 'wasm');
    tf.registerKernel({ ...original, kernelFunc: (args) => fn(args, original.kernelFunc) });
  }
}
