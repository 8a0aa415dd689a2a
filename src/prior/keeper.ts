/**
 * Prior threads kept across videos: a service worker's job thread runs videos (and a split video's
 * segments) one after another, and OpenCV and the prior's model (RVM: 1-2 s) load once per job
 * thread instead of once per video or segment; the CLI starts its thread before anything else
 * (`warm`), so that the thread loads while the main thread loads its own libraries, probes the
 * video and reads the plate. Each video borrows the thread with the model's
 * memory reset, so it starts from zero at the video's (or the segment's warm-up's) first frame, as
 * on a new thread. One thread per prior model; a video that finds it lent out starts its own (two
 * videos at once in one job thread, which the service never does); a failed thread is replaced.
 */
import type { PriorName } from './index.js';
import { PriorThread } from './worker.js';

/**
 * Lends a video a prior thread that outlives it, its model already loaded and its memory reset
 * (as a new thread's), or nothing (none free: the video starts its own). The video closes the
 * lease when it ends, which hands the thread back without stopping it.
 */
export interface PriorThreads {
  /** `photo`: lent for one photo's prior, which others' photo work (`helping`) may queue behind. */
  lend(name: PriorName, modelsDir?: string, photo?: boolean): { thread: PriorThread; close(): void } | undefined;
  /**
   * The kept thread for a photo's work besides its prior (part of its corners, of its band, its
   * plate check), queued there without a lease: none while a video holds it (its frames come
   * first) or before one was started.
   */
  helping?(name: PriorName, modelsDir?: string): PriorThread | undefined;
}

/** A kept thread's key: one thread per model and models folder. */
function keyOf(name: PriorName, modelsDir?: string): string {
  return `${name}\n${modelsDir ?? ''}`;
}

export class PriorThreadKeeper implements PriorThreads {
  private readonly kept = new Map<string, { thread: PriorThread; lent: boolean; fresh: boolean; photo?: boolean }>();
  /** Threads started so far (each loads its model once). */
  started = 0;

  /** Starts the thread for this model now (it loads in the background), unless one is kept. */
  warm(name: PriorName, modelsDir?: string): void {
    if (name !== 'none') this.entry(name, modelsDir);
  }

  private entry(name: PriorName, modelsDir?: string): { thread: PriorThread; lent: boolean; fresh: boolean; photo?: boolean } {
    const key = keyOf(name, modelsDir);
    let entry = this.kept.get(key);
    if (!entry?.thread.usable) {
      void entry?.thread.close();
      entry = { thread: new PriorThread(name, modelsDir), lent: false, fresh: true };
      this.kept.set(key, entry);
      this.started++;
    }
    return entry;
  }

  lend(name: PriorName, modelsDir?: string, photo = false): { thread: PriorThread; close(): void } | undefined {
    const entry = this.entry(name, modelsDir);
    if (entry.lent) return undefined;
    // A thread that ran a video before forgets it; a new one has nothing to forget.
    if (!entry.fresh) entry.thread.reset();
    entry.fresh = false;
    const lent = entry;
    lent.lent = true;
    lent.photo = photo;
    let open = true;
    return { thread: lent.thread, close: () => { if (open) { open = false; lent.lent = false; lent.photo = false; } } };
  }

  helping(name: PriorName, modelsDir?: string): PriorThread | undefined {
    const entry = this.kept.get(keyOf(name, modelsDir));
    return entry?.thread.usable && (!entry.lent || entry.photo) ? entry.thread : undefined;
  }

  /** Stops every kept thread; resolves once they have ended. */
  async close(): Promise<void> {
    const threads = [...this.kept.values()].map(({ thread }) => thread);
    this.kept.clear();
    await Promise.all(threads.map((t) => t.close()));
  }
}

let shared: PriorThreadKeeper | undefined;

/**
 * The prior threads of matters that bring none of their own (one per model, started at first use):
 * a process mattes photo after photo with one thread that loaded its model once. Idle threads do
 * not keep the process alive.
 */
export function sharedPriorThreads(): PriorThreadKeeper {
  return (shared ??= new PriorThreadKeeper());
}
