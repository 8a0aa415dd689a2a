/**
 * How many threads each library may use in this process: `CLEANPLATE_THREADS=N` (set by
 * `cleanplate worker --threads N`) caps ONNX Runtime, sharp and every ffmpeg this process starts,
 * so that a worker pinned to one core (taskset) does not oversubscribe it. Unset: each library's default.
 */
export function threadLimit(): number | undefined {
  const n = Number(process.env.CLEANPLATE_THREADS);
  return Number.isInteger(n) && n > 0 ? n : undefined;
}

/** ffmpeg's `-threads N` for its decoders (`input`: before `-i`) or its encoders and filters (`output`). */
export function ffmpegThreads(where: 'input' | 'output'): string[] {
  const n = threadLimit();
  if (!n) return [];
  return where === 'input' ? ['-threads', String(n)] : ['-threads', String(n), '-filter_threads', String(n)];
}
