/**
 * Where the core's large typed arrays come from. By default each is a fresh array, which Node's
 * allocator recycles cheaply. A live loop may run its per-frame work inside a ScratchArena instead:
 * every array made there is carved out of buffers kept from frame to frame, and all of them are
 * forgotten together at the next reset.
 *
 * Why: Chromium maps fresh memory for every ArrayBuffer over about a megabyte and unmaps it when the
 * buffer is collected, so each frame's planes are first touches of new pages; on a virtual machine a
 * first touch can cost ~25 µs per 4 KiB page (27 µs measured on the 2-core benchmark machine, against
 * ~0.2 µs on bare metal), and the classic engine's temporary planes for one 640x360 frame then cost more
 * in page faults than in arithmetic. Buffers kept across frames are touched once.
 *
 * Rule: nothing made inside `run` may be kept past the next `reset`, or have its buffer transferred.
 */
let current: ScratchArena | undefined;

export class ScratchArena {
  private readonly chunks: ArrayBuffer[] = [];
  private chunk = 0;
  private offset = 0;
  /** Bytes handed out since the last reset. */
  used = 0;

  constructor(private readonly chunkBytes = 32 << 20) {}

  /** Bytes held (kept for the next frames). */
  get held(): number {
    return this.chunks.reduce((s, c) => s + c.byteLength, 0);
  }

  /** Everything handed out so far may be overwritten from now on. */
  reset(): void {
    this.chunk = 0;
    this.offset = 0;
    this.used = 0;
  }

  /** `bytes` (rounded up to 8) at an 8-byte aligned offset of a kept buffer. */
  take(bytes: number): { buffer: ArrayBuffer; offset: number } {
    const size = (bytes + 7) & ~7;
    for (;;) {
      let c = this.chunks[this.chunk];
      if (!c || (this.offset === 0 && c.byteLength < size)) {
        // No chunk here yet, or one too small for this request: a new one in its place.
        c = new ArrayBuffer(Math.max(this.chunkBytes, size));
        this.chunks.splice(this.chunk, 0, c);
      }
      if (this.offset + size <= c.byteLength) {
        const offset = this.offset;
        this.offset += size;
        this.used += size;
        return { buffer: c, offset };
      }
      this.chunk++;
      this.offset = 0;
    }
  }

  /** Runs `fn` with this arena as the core's allocator (synchronous work: what runs after an await is not covered). */
  run<T>(fn: () => T): T {
    const previous = current;
    current = this;
    try {
      return fn();
    } finally {
      current = previous;
    }
  }
}

/** A zeroed Float32Array of n elements. */
export function f32(n: number): Float32Array {
  if (!current) return new Float32Array(n);
  const { buffer, offset } = current.take(n * 4);
  return new Float32Array(buffer, offset, n).fill(0);
}

/** A Float32Array holding a copy of `src`. */
export function f32Copy(src: ArrayLike<number>): Float32Array {
  if (!current) return new Float32Array(src);
  const { buffer, offset } = current.take(src.length * 4);
  const out = new Float32Array(buffer, offset, src.length);
  out.set(src);
  return out;
}

/** A zeroed Float64Array of n elements. */
export function f64(n: number): Float64Array {
  if (!current) return new Float64Array(n);
  const { buffer, offset } = current.take(n * 8);
  return new Float64Array(buffer, offset, n).fill(0);
}

/** A zeroed Int32Array of n elements. */
export function i32(n: number): Int32Array {
  if (!current) return new Int32Array(n);
  const { buffer, offset } = current.take(n * 4);
  return new Int32Array(buffer, offset, n).fill(0);
}

/** An Int32Array holding a copy of `src`. */
export function i32Copy(src: ArrayLike<number>): Int32Array {
  if (!current) return new Int32Array(src);
  const { buffer, offset } = current.take(src.length * 4);
  const out = new Int32Array(buffer, offset, src.length);
  out.set(src);
  return out;
}

/** A zeroed Uint8Array of n elements. */
export function u8(n: number): Uint8Array {
  if (!current) return new Uint8Array(n);
  const { buffer, offset } = current.take(n);
  return new Uint8Array(buffer, offset, n).fill(0);
}
