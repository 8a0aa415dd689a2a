/**
 * onnxruntime-node for Node's modules, with ONNX Runtime's telemetry off. Its Linux and macOS
 * builds (1.2x on) report usage to Microsoft (1DS: a device id and an offline event store under
 * ~/.cache/Microsoft, a /tmp/mat-debug-PID.log per process) unless ORT_DISABLE_TELEMETRY=1 is set
 * before its first session (read then, and latched for the process). A matting tool has no
 * business reporting on its users: off, unless the user set the variable themselves. Every Node
 * module imports ONNX Runtime from here, never from the package directly.
 */
import ort from 'onnxruntime-node';
import { disableOrtTelemetry } from './telemetry.js';

disableOrtTelemetry();

/**
 * A session for a model's bytes, as every Node model runs: `threads` for its kernels, operators one
 * at a time (the models are chains), every graph optimisation.
 */
export function createSession(bytes: Uint8Array, threads: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all' });
}

export default ort;
