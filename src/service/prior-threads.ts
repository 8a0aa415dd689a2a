/**
 * A service worker's prior threads, kept across the videos (and a split video's segments) that its
 * job thread runs one after another: OpenCV and the prior's model (RVM: 1-2 s) load once per job
 * thread instead of once per video or segment. Each video borrows the thread with the model's
 * memory reset, so it starts from zero at the video's (or the segment's warm-up's) first frame, as
 * on a new thread. One thread per prior model; a video that finds it lent out starts its own (two
 * videos at once in one job thread, which the service never does); a failed thread is replaced.
 */
import type { PriorName } from '../prior/index.js';
import { PriorThread } from '../prior/worker.js';
import type { PriorThreads } from '../video/matte-video.js';

export class PriorThreadKeeper implements PriorThreads {
  private readonly kept = new Map<string, { thread: PriorThread; lent: boolean }>();
  /** Threads started so far (each loads its model once). */
  started = 0;

  lend(name: PriorName, modelsDir?: string): { thread: PriorThread; close(): void } | undefined {
    const key = `${name}\n${modelsDir ?? ''}`;
    let entry = this.kept.get(key);
    if (entry?.lent) return undefined;
    if (entry?.thread.usable) {
      entry.thread.reset();
    } else {
      entry?.thread.close();
      entry = { thread: new PriorThread(name, modelsDir), lent: false };
      this.kept.set(key, entry);
      this.started++;
    }
    const lent = entry;
    lent.lent = true;
    let open = true;
    return { thread: lent.thread, close: () => { if (open) { open = false; lent.lent = false; } } };
  }

  /** Stops every kept thread. */
  close(): void {
    for (const { thread } of this.kept.values()) thread.close();
    this.kept.clear();
  }
}
