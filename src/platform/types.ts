/**
 * What the platform-free core (align, prior, matte, composite, metrics) needs from the platform it
 * runs on. Node's side is ./index.ts; the web bundle replaces that module with ./browser.ts
 * (scripts/build-web.mjs), so the core imports one module and never asks where it runs.
 */
export interface Platform {
  readonly name: 'node' | 'browser';
  /**
   * The OpenCV.js module as its package exports it (initialised or not; cv.ts waits for it). Wrapped
   * in an object: some builds are thenables, which a promise would try to adopt.
   */
  openCv(): Promise<{ module: unknown }>;
  /** Where the models live: a folder (Node) or a URL (browser), holding prior/. */
  readonly modelsDir: string;
  /** `file` inside `dir`, as a path or a URL: what error messages name. */
  locate(dir: string, file: string): string;
  /** The bytes of a located file; rejects when it cannot be read. */
  readBytes(location: string): Promise<Uint8Array>;
  sha256Hex(bytes: Uint8Array): Promise<string>;
  /** Folder or URL prefix of TensorFlow.js's WebAssembly binaries (tfjs-backend-wasm*.wasm). */
  tfjsWasmPrefix(): string;
  /**
   * A session of ONNX Runtime's native kernels on an ONNX model's bytes, where the platform has
   * them (Node: onnxruntime-node). Absent in the browser, whose RVM prior stays on TF.js.
   */
  onnxSession?(bytes: Uint8Array, options: { threads: number }): Promise<OnnxSession>;
}

/** A float32 tensor as an ONNX session takes and gives it (row-major, `dims` its shape). */
export interface OnnxTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface OnnxSession {
  run(feeds: Record<string, OnnxTensor>): Promise<Record<string, OnnxTensor>>;
}
