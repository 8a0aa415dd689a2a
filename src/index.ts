/** cleanplate's public API. */
export { createMatter } from './pipeline.js';
export type { Matter, MatterOptions, MatteRequest, MatteResult, MatteReport, ImageSource } from './pipeline.js';
export type { ImageF32, Plane } from './image.js';
export { decodeImage } from './io/decode.js';
export { encodePng, rgba } from './io/encode.js';
export { writeMatteOutputs } from './io/outputs.js';
export { alphaMetrics, dtSSD, sad, mseIn, mad, grad, conn } from './eval/metrics.js';
export type { AlphaMetrics } from './eval/metrics.js';
export { evaluateFolder, assertComplete } from './eval/evaluate.js';
export type { EvalResult } from './eval/evaluate.js';
export { composite, resizeCover, parseColour } from './composite/index.js';
export { CleanplateError } from './errors.js';
export type { AlignMode, AlignmentReport } from './align/homography.js';
export type { PriorName } from './prior/index.js';
export type { EngineName } from './matte/engine.js';
export type { VideoRequest, VideoReport, VideoOutputs, VideoProgress } from './video/matte-video.js';
export { probeVideo } from './io/video-probe.js';
export type { VideoInfo } from './io/video-probe.js';
