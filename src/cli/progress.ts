/** Progress on stderr: a redrawn bar on a terminal, plain lines otherwise, nothing with --json. */
export class Progress {
  private readonly tty = Boolean(process.stderr.isTTY);
  private readonly start = Date.now();
  constructor(private readonly total: number, private readonly quiet = false) {}

  step(done: number, label: string): void {
    if (this.quiet) return;
    const elapsed = (Date.now() - this.start) / 1000;
    const eta = done > 0 ? (elapsed / done) * (this.total - done) : 0;
    if (this.tty) {
      const width = 24, filled = Math.round((done / this.total) * width);
      process.stderr.write(`\r[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${done}/${this.total} ${label.slice(0, 40).padEnd(40)} ETA ${eta.toFixed(0)}s`);
      if (done === this.total) process.stderr.write('\n');
    } else {
      process.stderr.write(`${done}/${this.total} ${label} (${elapsed.toFixed(1)} s elapsed)\n`);
    }
  }

  message(text: string): void {
    if (!this.quiet) process.stderr.write(`${this.tty ? '\r\x1b[K' : ''}${text}\n`);
  }
}
