/** The few members of a dedicated worker's global scope the workers use (the DOM lib types `self` as a window). */
export interface WorkerScope {
  postMessage(message: unknown, transfer?: Transferable[]): void;
  onmessage: ((event: MessageEvent) => void) | null;
  location: { href: string };
}

export const scope = self as unknown as WorkerScope;

/** The message of anything thrown, one line. */
export function messageOf(err: unknown): string {
  return String((err as Error)?.message ?? err).split('\n')[0]!;
}
