/** Peak resident memory of this process. */
import { readFileSync } from 'node:fs';

/**
 * Peak RSS in MB. On Linux, getrusage's maxrss (`process.resourceUsage().maxRSS`) survives fork and
 * exec, so a process started by a big parent reports the parent's peak; /proc's VmHWM belongs to
 * this address space alone. Elsewhere maxRSS is the best there is.
 */
export function peakRssMB(): number {
  try {
    const m = /VmHWM:\s+(\d+)\s+kB/.exec(readFileSync('/proc/self/status', 'utf8'));
    if (m) return Math.round(Number(m[1]) / 1024);
  } catch {
    // not Linux
  }
  return Math.round(process.resourceUsage().maxRSS / 1024);
}
