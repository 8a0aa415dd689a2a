/**
 * Finding and running ffmpeg/ffprobe. Video goes through ffmpeg child processes rather than a
 * binding or wasm build: it is the field's tool, every platform packages it, and separate
 * processes decode and encode in parallel with our matting.
 */
import { spawn } from 'node:child_process';
import { accessSync, constants, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { CleanplateError } from '../errors.js';

export const FFMPEG_HELP = 'install ffmpeg (Debian/Ubuntu: apt install ffmpeg; macOS: brew install ffmpeg; Windows: winget install ffmpeg) or point CLEANPLATE_FFMPEG / CLEANPLATE_FFPROBE at the binaries';

const found = new Map<string, string>();

/** An executable file at `path`, or on the PATH under that name. */
function executable(path: string): boolean {
  const candidates = path.includes('/') || path.includes('\\') ? [path]
    : (process.env.PATH ?? '').split(delimiter).filter(Boolean).flatMap((dir) => (process.platform === 'win32' ? [join(dir, `${path}.exe`), join(dir, path)] : [join(dir, path)]));
  return candidates.some((file) => {
    try {
      accessSync(file, constants.X_OK);
      return statSync(file).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * The path of `ffmpeg` or `ffprobe`, checked once; a clear error when it is missing. Looked up on
 * the PATH rather than run (`-version` blocked this thread ~250 ms per tool at every start); a
 * binary that is there but broken fails its first real run (silentFailure).
 */
export function tool(name: 'ffmpeg' | 'ffprobe'): string {
  const cached = found.get(name);
  if (cached) return cached;
  const path = process.env[name === 'ffmpeg' ? 'CLEANPLATE_FFMPEG' : 'CLEANPLATE_FFPROBE'] || name;
  if (!executable(path)) throw new CleanplateError(`${name} not found: video needs it; ${FFMPEG_HELP}`, path);
  found.set(name, path);
  return path;
}

/**
 * A run that failed without a word on stderr: ffmpeg and ffprobe always say why an input fails, so
 * the binary itself is at fault (a broken install, another program under that name). `tool` only
 * looks the binary up; this is where one that is there but does not work gets its one-line error,
 * naming the binary rather than the input.
 */
export function silentFailure(name: 'ffmpeg' | 'ffprobe', code: number | null): CleanplateError {
  return new CleanplateError(`${name} failed without a message (exit ${code}): not a working ${name}; ${FFMPEG_HELP}`, tool(name));
}

/** Runs a tool to completion and returns its stdout; stderr's last lines go into the error. */
export function runTool(name: 'ffmpeg' | 'ffprobe', args: string[], file: string, what: string): Promise<string> {
  const child = spawn(tool(name), args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '', err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => { out += d; });
  child.stderr.setEncoding('utf8').on('data', (d: string) => { err = (err + d).slice(-4000); });
  return new Promise((resolve, reject) => {
    child.on('error', (e) => reject(new CleanplateError(`${what}: ${e.message}`, file)));
    child.on('close', (code) => {
      if (code === 0) resolve(out);
      else reject(err.trim() ? new CleanplateError(`${what}: ${tellingLine(err, file)}`, file) : silentFailure(name, code));
    });
  });
}

/**
 * The most telling line of an ffmpeg error log, without the `[demuxer @ 0x...]` prefix, and without
 * the `FILE: ` that ffmpeg puts first when `file` is given (our errors name the file already).
 */
export function lastLine(stderr: string, file?: string): string {
  const lines = stderr.split('\n').map((l) => l.replace(/^\[[^\]]*\]\s*/, '').trim()).filter(Boolean);
  const line = lines.at(-1) ?? '';
  return file && line.startsWith(`${file}: `) ? line.slice(file.length + 2) : line;
}

/** The system's words for a file that cannot be written or read, as ffmpeg quotes them. */
const SYSTEM_ERROR = /No space left on device|Disk quota exceeded|Read-only file system|Permission denied|Input\/output error|Not a directory/;

/**
 * The line of an ffmpeg error log that says why: one quoting the system's error (a full disk says
 * so a few lines before ffmpeg's last, generic line), else the last line.
 */
export function tellingLine(stderr: string, file?: string): string {
  const lines = stderr.split('\n').map((l) => l.replace(/^\[[^\]]*\]\s*/, '').trim()).filter(Boolean);
  const system = lines.filter((l) => SYSTEM_ERROR.test(l)).at(-1);
  return system ?? lastLine(stderr, file);
}

/** ffmpeg messages that mean the input is damaged even though ffmpeg itself exits 0. */
export const DAMAGE = /partial file|Invalid data found|Error while decoding|corrupt|Invalid NAL unit|error reading header/i;
