/**
 * The prior's side of a video's prior thread (see worker.ts): loads the model once, then turns each
 * frame it is sent into the prior's alpha with the model's memory carried across frames, strictly
 * in the order the frames arrive.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { loadCv } from '../cv.js';
import { fromBytes } from '../image.js';
import { createPrior, type PriorName, type PriorStreamOptions } from './index.js';

interface Setup { name: PriorName; modelsDir?: string; stream?: PriorStreamOptions }
interface FrameMessage { id: number; width: number; height: number; bytes: Uint8Array }

const port = parentPort!;
const setup = workerData as Setup;
try {
  await loadCv();
  const prior = await createPrior(setup.name, setup.modelsDir);
  const stream = prior.stream(setup.stream);
  let chain = Promise.resolve();
  port.on('message', (msg: FrameMessage) => {
    // One frame after the other: the recurrent state must see the frames in order.
    chain = chain.then(async () => {
      try {
        const alpha = await stream.estimate(fromBytes(msg.width, msg.height, 3, msg.bytes));
        port.postMessage({ id: msg.id, data: alpha.data }, [alpha.data.buffer as ArrayBuffer]);
      } catch (err) {
        port.postMessage({ id: msg.id, error: (err as Error).message });
      }
    });
  });
  port.postMessage({ ready: true });
} catch (err) {
  port.postMessage({ ready: false, error: (err as Error).message });
}
