/**
 * The person prior: a soft segmentation of the subject from a pretrained model, at the input's
 * resolution. It bounds where a subject can be; the plate recovers the subject's edges.
 * `createPrior` imports the models (ONNX Runtime for RVM in Node, TF.js otherwise) only when one is
 * created, so that a process whose prior runs on a prior thread never loads them on its main thread.
 */
import { createPlane, type ImageF32, type Plane } from '../image.js';
import { platform } from '../platform/index.js';
import { readPriorFiles, readPriorOnnx } from './files.js';
import { priorInputSize, stateless, type Prior, type PriorName, type PriorStream } from './spec.js';

export * from './spec.js';

class NoPrior implements Prior {
  readonly name = 'none' as const;
  async estimate(image: ImageF32): Promise<Plane> {
    return createPlane(image.width, image.height);
  }

  inputSize(width: number, height: number): { width: number; height: number } { return priorInputSize('none', width, height); }

  stream(): PriorStream { return stateless(this); }
}

/** RVM runs on native ONNX Runtime where the platform has it (Node: ~3.5x faster than TF.js here). */
const onOnnx = (name: PriorName): name is 'rvm' => name === 'rvm' && platform.onnxSession !== undefined;

export async function createPrior(name: PriorName, modelsDir?: string): Promise<Prior> {
  if (name === 'none') return new NoPrior();
  if (onOnnx(name)) return (await import('./rvm-onnx.js')).loadRvmOnnx(modelsDir);
  return (await import('./models.js')).loadPrior(name, modelsDir);
}

/** The files `createPrior` will read, hash-checked now (their errors as loading would give them). */
export async function checkPriorFiles(name: PriorName, modelsDir?: string): Promise<void> {
  if (name === 'none') return;
  if (onOnnx(name)) await readPriorOnnx(name, modelsDir);
  else await readPriorFiles(name, modelsDir);
}
