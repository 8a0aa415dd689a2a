/**
 * The person prior: a soft segmentation of the subject from a pretrained model, at the input's
 * resolution. It bounds where a subject can be; the plate recovers the subject's edges.
 * `createPrior` imports the models (TF.js, src/prior/models.ts) only when one is created, so that
 * a process whose prior runs on a prior thread never loads TF.js on its main thread.
 */
import { createPlane, type ImageF32, type Plane } from '../image.js';
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

export async function createPrior(name: PriorName, modelsDir?: string): Promise<Prior> {
  if (name === 'none') return new NoPrior();
  return (await import('./models.js')).loadPrior(name, modelsDir);
}
