/**
 * An error meant for the user: the CLI prints its message as one line, without a stack trace.
 * `file` names the input or output the problem is about.
 */
export class CleanplateError extends Error {
  constructor(message: string, readonly file?: string) {
    super(file ? `${file}: ${message}` : message);
    this.name = 'CleanplateError';
  }
}

/** The user stopped the run (Ctrl-C, an aborted signal); nothing was published. */
export class InterruptedError extends CleanplateError {
  constructor() {
    super('interrupted; no output was written');
    this.name = 'InterruptedError';
  }
}
