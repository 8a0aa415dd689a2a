/**
 * The prior's side of a prior thread (see worker.ts): loads the model once, then turns each video
 * frame it is sent into the prior's alpha with the model's memory carried across frames, strictly
 * in the order the frames arrive, and each photo into its alpha on its own (photos first).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { cv, loadCv, withMats } from '../cv.js';
import { fromBytes } from '../image.js';
import { createPrior, type PriorName, type PriorStreamOptions } from './index.js';

interface Setup { name: PriorName; modelsDir?: string; stream?: PriorStreamOptions }
interface FrameMessage { id: number; width: number; height: number; bytes: Uint8Array }
/** One image on its own (a photo), already at the model's input size, without the video's memory. */
interface ImageMessage { id: number; image: { width: number; height: number; data: Float32Array }; longSide?: number }

/** RGB bytes resized with OpenCV's area interpolation (the same filter `resize` uses to shrink floats). */
function shrinkBytes(bytes: Uint8Array, width: number, height: number, w: number, h: number): Uint8Array {
  if (w === width && h === height) return bytes;
  const c = cv();
  return withMats((t) => {
    const src = t(new c.Mat(height, width, c.CV_8UC3));
    (src.data as Uint8Array).set(bytes);
    const dst = t(new c.Mat());
    c.resize(src, dst, new c.Size(w, h), 0, 0, w < width && h < height ? c.INTER_AREA : c.INTER_LINEAR);
    return Uint8Array.from(dst.data as Uint8Array);
  });
}

const port = parentPort!;
const setup = workerData as Setup;
try {
  const prior = await createPrior(setup.name, setup.modelsDir);
  let stream = prior.stream(setup.stream);
  /**
   * Work waits in two queues: photos (their priors on their own) go before the video's frames and
   * resets, which keep their order (the recurrent state must see the frames in order). A video's
   * colour pass asks for its sampled frames' priors while the first frames are already queued, and
   * it is what the video waits for.
   */
  const photos: ImageMessage[] = [];
  const video: (FrameMessage | { reset: true })[] = [];
  let busy = false;

  const photo = async (msg: ImageMessage) => {
    try {
      const alpha = await prior.estimate({ ...msg.image, channels: 3 }, { prepared: true, ...(msg.longSide ? { longSide: msg.longSide } : {}) });
      port.postMessage({ id: msg.id, data: alpha.data, width: alpha.width, height: alpha.height }, [alpha.data.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ id: msg.id, error: (err as Error).message });
    }
  };
  const frame = async (msg: FrameMessage) => {
    try {
      // OpenCV (to shrink the bytes) loads with the first frame: a photo, sent already shrunk,
      // never waits for it.
      await loadCv();
      // Shrunk as bytes to the size the model sees, then converted: a whole 720p frame in floats
      // (11 MB) is never made here, and the alpha goes back at the model's size.
      const { width, height } = stream.inputSize(msg.width, msg.height);
      const alpha = await stream.estimate(fromBytes(width, height, 3, shrinkBytes(msg.bytes, msg.width, msg.height, width, height)), true);
      // The frame as floats too: converted here, on this thread's core, and transferred.
      const floats = fromBytes(msg.width, msg.height, 3, msg.bytes).data;
      port.postMessage({ id: msg.id, data: alpha.data, width: alpha.width, height: alpha.height, frame: floats }, [alpha.data.buffer as ArrayBuffer, floats.buffer as ArrayBuffer]);
    } catch (err) {
      port.postMessage({ id: msg.id, error: (err as Error).message });
    }
  };
  const pump = async () => {
    if (busy) return;
    busy = true;
    try {
      for (;;) {
        // Messages are events: without a turn of the event loop here, a photo sent while frames are
        // queued would only be seen once they are all done (the model's promises resolve as microtasks).
        await new Promise((r) => setImmediate(r));
        const next = photos.shift() ?? video.shift();
        if (!next) break;
        if ('image' in next) await photo(next);
        else if ('reset' in next) { stream.close(); stream = prior.stream(setup.stream); } // a new video: its memory zero
        else await frame(next);
      }
    } finally {
      busy = false;
    }
  };
  port.on('message', (msg: FrameMessage | ImageMessage | { reset: true }) => {
    if ('image' in msg) photos.push(msg);
    else video.push(msg);
    void pump();
  });
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: (err as Error).message });
}
