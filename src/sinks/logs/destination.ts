import { createWriteStream, fstatSync } from 'node:fs';
import process from 'node:process';
import { isatty } from 'node:tty';

/** A stream log lines are written to, and what the writer may do with it. */
export interface LogTarget {
  readonly stream: NodeJS.WritableStream;
  /** The writer created it: it ends it on close. */
  readonly owned: boolean;
  /** Opens it again after an error (files: a full disk may get space back), or null. */
  readonly reopen: (() => LogTarget) | null;
  /** For the one stderr line that reports a failing destination. */
  readonly label: string;
}

const ignore = () => {};

/**
 * `stdout`, `stderr`, a file path (appended to), or a stream given by the caller.
 *
 * What process.stdout does depends on what fd 1 is (Node 24, Linux):
 *   pipe, socket  asynchronous: write() returns false when the reader lags → the writer waits for 'drain'
 *   TTY           synchronous (an interactive terminal: fine)
 *   file          synchronous fs.writeSync on the event loop (a stalled disk would stall forwarding)
 * So a stdout that is a file (or /dev/null) gets its own fs.WriteStream on the
 * same fd: writes run on the libuv pool and report back like a pipe does.
 */
export function openLogTarget(target: NodeJS.WritableStream | string): LogTarget {
  if (typeof target !== 'string') return { stream: target, owned: false, reopen: null, label: 'stream' };
  if (target === 'stdout' || target === 'stderr') return openStdio(target);
  return openFile(target);
}

function openStdio(name: 'stdout' | 'stderr'): LogTarget {
  const fd = name === 'stdout' ? 1 : 2;
  let isStreamLike = true;
  try {
    const st = fstatSync(fd);
    isStreamLike = st.isFIFO() || st.isSocket() || isatty(fd);
  } catch {
    // fd closed: process.stdout copes (writes go nowhere).
  }
  if (!isStreamLike) {
    const stream = createWriteStream('', { fd, autoClose: false });
    return { stream, owned: true, reopen: null, label: name };
  }
  const stream = process[name];
  // EPIPE after the reader went away must never become an uncaught exception,
  // also for writes still in flight after the writer let go of the stream.
  if (!stream.listeners('error').includes(ignore)) stream.on('error', ignore);
  return { stream, owned: false, reopen: null, label: name };
}

function openFile(path: string): LogTarget {
  const stream = createWriteStream(path, { flags: 'a' });
  stream.on('error', ignore);
  return { stream, owned: true, reopen: () => openFile(path), label: path };
}
