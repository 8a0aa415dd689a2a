#!/usr/bin/env node
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { availableParallelism, constants } from 'node:os';
import { fileURLToPath } from 'node:url';

// `npm ci` runs no scripts here (.npmrc: ignore-scripts), so a fresh checkout is not built yet.
const entry = new URL('../dist/src/cli/main.js', import.meta.url);
if (!existsSync(entry)) {
  process.stderr.write('cleanplate: not built yet: run `npm run build` (or `npm test`) in the package folder first\n');
  process.exit(1);
}

const args = process.argv.slice(2);
/**
 * A video on two cores runs in a Node started with V8's `--single-threaded`: the matting, the
 * prior thread and ffmpeg's encoders already keep both cores busy, and V8's background threads
 * (concurrent marking and sweeping, parallel scavenges, background JIT) only take turns from them
 * (measured, alternating runs of a 48-frame 720p clip: 3.75 → 4.19 fps on the AMD EPYC VM, hand-held
 * and 1080p +10–20%; 6.29–6.46 → 7.32–7.62 fps on the Intel Xeon VM, hand-held 3.83–3.91 → 4.24–4.34;
 * a photo gains nothing: its start-up compiles in the background while the main thread works).
 * V8 takes these flags only at start-up (set later, they abort the process), hence a child process;
 * this one forwards signals to it and exits with its code. Its own process group: a Ctrl-C on a
 * terminal reaches it once (forwarded from here), not twice (twice means "quit at once").
 */
const REEXEC_FLAG = '--single-threaded';
if (args[0] === 'video' && availableParallelism() <= 2 && process.platform !== 'win32' && !process.execArgv.includes(REEXEC_FLAG)) {
  const child = spawn(process.execPath, [...process.execArgv, REEXEC_FLAG, fileURLToPath(import.meta.url), ...args], { stdio: ['inherit', 'inherit', 'inherit', 'ipc'], detached: true });
  const forward = (signal) => { if (child.exitCode === null && child.signalCode === null) child.kill(signal); };
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, forward);
  child.on('error', (err) => { process.stderr.write(`cleanplate: cannot start ${process.execPath}: ${err.message}\n`); process.exit(1); });
  child.on('exit', (code, signal) => process.exit(code ?? 128 + (constants.signals[signal] ?? 0)));
} else {
  if (process.channel && process.execArgv.includes(REEXEC_FLAG)) {
    // Started by the launcher above: its IPC channel closes when it dies (even by SIGKILL), and the
    // run is then interrupted as by a Ctrl-C (outputs cleaned up); the channel keeps nothing alive.
    process.channel.unref();
    process.once('disconnect', () => process.kill(process.pid, 'SIGINT'));
  }
  const { main } = await import(entry.href);
  process.exitCode = await main(args);
}
