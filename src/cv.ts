/**
 * OpenCV.js, loaded once, from where the platform keeps it (src/platform: Node or the browser). The
 * WebAssembly build initialises asynchronously; every caller awaits `loadCv()` and then works with
 * Mats that it must delete (the wasm heap is not garbage collected).
 */
import type { ImageF32, Plane } from './image.js';
import { platform } from './platform/index.js';
import { f32, f32Copy } from './alloc.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type Cv = any;
let cvPromise: Promise<Cv> | undefined;
let cvReady: Cv | undefined;

/** The loaded module, for synchronous pure functions; `loadCv()` must have resolved first. */
export function cv(): Cv {
  if (!cvReady) throw new Error('OpenCV.js is not loaded yet: await loadCv() first');
  return cvReady;
}

/** Loads the module where the platform keeps it (Node: require; browser: a chunk of the bundle). */
export function loadCv(): Promise<Cv> {
  cvPromise ??= platform.openCv().then(({ module }) => new Promise<Cv>((resolve, reject) => {
    const mod = module as Cv;
    if (mod && typeof mod.then === 'function') {
      // Some builds are thenables that resolve to themselves; unwrap without recursing.
      mod.then((cv: Cv) => { delete cv.then; resolve(cv); }, reject);
    } else if (mod.Mat) {
      resolve(mod);
    } else {
      mod.onRuntimeInitialized = () => resolve(mod);
    }
  })).then((m) => (cvReady = m));
  return cvPromise;
}

/** Runs `fn` and deletes every Mat it registered, whatever happens. */
export function withMats<T>(fn: (track: <M extends { delete(): void }>(m: M) => M) => T): T {
  const mats: { delete(): void }[] = [];
  try {
    return fn((m) => { mats.push(m); return m; });
  } finally {
    for (const m of mats) m.delete();
  }
}

export function matFromImage(cv: Cv, image: ImageF32): Cv {
  const type = image.channels === 1 ? cv.CV_32FC1 : image.channels === 3 ? cv.CV_32FC3 : cv.CV_32FC4;
  const mat = new cv.Mat(image.height, image.width, type);
  mat.data32F.set(image.data);
  return mat;
}

/** The Mat's floats as an image; copied into `into` when it is given and of that length (a buffer kept for reuse). */
export function imageFromMat(mat: Cv, into?: Float32Array): ImageF32 {
  const channels = mat.channels();
  const src = mat.data32F as Float32Array;
  const data = into && into.length === src.length ? (into.set(src), into) : f32Copy(src);
  return { width: mat.cols, height: mat.rows, channels, data };
}

/**
 * Colour images above this many bytes of floats go through OpenCV one channel at a time
 * (`channelWise`): a 4K image is 100 MB, and the wasm heap keeps its high-water mark for good.
 */
const CHANNEL_WISE_BYTES = 48 << 20;

/**
 * `op(src, dst)` on a colour image, as one three-channel Mat or, for a large image, channel by
 * channel (the result in `into` when it is given and of the result's length, for a small image): the same values (OpenCV filters, resizes and warps each channel on its own either way),
 * with a third of the image in the wasm heap at once. A 4K warp took 200 MB of heap (source and
 * result) that the process then held to its end; channel by channel it takes 67 MB.
 */
export function channelWise(cv: Cv, image: ImageF32, op: (src: Cv, dst: Cv) => void, into?: Float32Array): ImageF32 {
  if (image.channels !== 3 || image.data.length * 4 <= CHANNEL_WISE_BYTES) {
    return withMats((t) => {
      const dst = t(new cv.Mat());
      op(t(matFromImage(cv, image)), dst);
      return imageFromMat(dst, into);
    });
  }
  return withMats((t) => {
    const src = t(new cv.Mat(image.height, image.width, cv.CV_32FC1)), dst = t(new cv.Mat());
    const d = image.data;
    let out: Float32Array | undefined, width = 0, height = 0;
    for (let ch = 0; ch < 3; ch++) {
      // Views fetched anew each time: a growing heap detaches the ones taken before.
      const s = src.data32F as Float32Array;
      for (let p = 0, i = ch; p < s.length; p++, i += 3) s[p] = d[i]!;
      op(src, dst);
      const r = dst.data32F as Float32Array;
      out ??= into && into.length === r.length * 3 ? into : f32(r.length * 3);
      width = dst.cols; height = dst.rows;
      for (let p = 0, i = ch; p < r.length; p++, i += 3) out[i] = r[p]!;
    }
    return { width, height, channels: 3, data: out! };
  });
}

/** 255 where the plane is above `threshold` (below or at it with `invert`), else 0. */
export function matU8FromPlane(cv: Cv, plane: Plane, threshold = 0.5, invert = false): Cv {
  const mat = new cv.Mat(plane.height, plane.width, cv.CV_8UC1);
  const out = mat.data as Uint8Array;
  for (let i = 0; i < plane.data.length; i++) out[i] = (plane.data[i]! > threshold) !== invert ? 255 : 0;
  return mat;
}

export function planeFromMatU8(mat: Cv): Plane {
  const src = mat.data as Uint8Array;
  const data = f32(src.length);
  for (let i = 0; i < src.length; i++) data[i] = src[i]! / 255;
  return { width: mat.cols, height: mat.rows, channels: 1, data };
}
