/**
 * ONNX Runtime's telemetry off for the whole process (why: platform/ort.ts), unless the user set
 * ORT_DISABLE_TELEMETRY themselves. The native runtime reads the variable from the process's
 * environment, which only the main thread's process.env writes: a worker thread's process.env is
 * its own copy. So the main thread calls this before it starts a thread that may load the runtime
 * (a prior thread, a service's job thread), and ort.ts for sessions made on the thread importing it.
 * A module of its own, without the runtime: the command line starts its prior thread before it
 * imports anything that loads ONNX Runtime.
 */
export function disableOrtTelemetry(): void {
  process.env['ORT_DISABLE_TELEMETRY'] ??= '1';
}
