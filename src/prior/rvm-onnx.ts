/**
 * RVM on ONNX Runtime's native kernels (Node): models/prior/rvm.onnx, converted from the vendored
 * TF.js graph by training/export_rvm_onnx.py (same weights; alpha within ~1e-4 of TF.js's, test
 * prior-onnx.test.ts). At a video's 384x224 grid ~35 ms a frame against TF.js WebAssembly's
 * ~120-190 ms (kernels and graph executor), on one thread either way.
 */
import { CleanplateError } from '../errors.js';
import { platform, type OnnxTensor } from '../platform/index.js';
import { priorModelsDir, readPriorOnnx } from './files.js';
import { RvmPrior, type RvmStep } from './rvm.js';

/** The recurrent state's four tensors, as the model returned them. */
type State = OnnxTensor[];
const FIRST: OnnxTensor = { data: new Float32Array(1), dims: [1, 1, 1, 1] };

export async function loadRvmOnnx(dir = priorModelsDir()): Promise<RvmPrior<State>> {
  if (!platform.onnxSession) throw new Error('no native ONNX Runtime on this platform');
  const bytes = await readPriorOnnx('rvm', dir);
  const session = await platform.onnxSession(bytes, { threads: 1 }).catch((err: Error) => {
    throw new CleanplateError(`model cannot be loaded (${String(err.message).split('\n')[0]})`, platform.locate(dir, 'rvm.onnx'));
  });
  const step: RvmStep<State> = {
    async step(data, width, height, state) {
      const [r1, r2, r3, r4] = state ?? [FIRST, FIRST, FIRST, FIRST];
      const out = await session.run({ src: { data, dims: [1, height, width, 3] }, r1i: r1!, r2i: r2!, r3i: r3!, r4i: r4! });
      return { alpha: out['pha']!.data, state: [out['r1o']!, out['r2o']!, out['r3o']!, out['r4o']!] };
    },
    free: () => {},
  };
  return new RvmPrior(step);
}
