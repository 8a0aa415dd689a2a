/** Progress on stderr: a redrawn bar on a terminal, plain lines otherwise, nothing with --json. */
export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly start = Date.now();
  private lastLine = 0;
  /** `lineInterval`: at most one plain line per this many milliseconds (a bar redraws freely). */
  constructor(private readonly total: number, private readonly quiet = false, private readonly lineInterval = 0) {}

  step(done: number, label: string): void {
    if (this.quiet) return;
    if (!this.tty && done < this.total && Date.now() - this.lastLine < this.lineInterval) return;
    this.lastLine = Date.now();
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : 0;
    if (this.tty) {
      const width = 24, filled = Math.round((done / this.total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${label.slice(0, 40).padEnd(40)} ETA ${eta.toFixed(0)}s`);
      if (done === this.total) process.stderr.write('\n');
    } else {
      process.stderr.write(`${done}/${this.total} ${label} (${elapsed.toFixed(1)} s elapsed, ETA ${eta.toFixed(0)} s)\n`);
    }
  }

  message(text: string): void {
    if (!this.quiet) process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}${text}\n`);
  }
}
