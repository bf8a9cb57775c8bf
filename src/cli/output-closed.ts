import { dlopen, FFIType, ptr } from "bun:ffi";

/** poll(2) flags: an error on the descriptor (a pipe's write end without readers), a hang-up (a socket or terminal). */
const POLLERR = 0x8;
const POLLHUP = 0x10;

type Poll = (fds: Int32Array, count: number, timeoutMs: number) => number;
let poll: Poll | null | undefined;

/** libc's poll(2): Bun exposes no poll of its own. Null where libc can't be opened (then nothing is known). */
function libcPoll(): Poll | null {
  if (poll === undefined) {
    try {
      const libc = dlopen("libc.so.6", {
        poll: { args: [FFIType.ptr, FFIType.u64, FFIType.i32], returns: FFIType.i32 },
      });
      poll = (fds, count, timeoutMs) => libc.symbols.poll(ptr(fds), count, timeoutMs);
    } catch {
      poll = null;
    }
  }
  return poll;
}

/**
 * Whether nobody reads `fd` any more: a pipe whose reader is gone (`hashd logs -f | head`), a
 * socket whose peer closed, a terminal that hung up. One poll(2) with no events asked, which
 * reports exactly these conditions, as journalctl checks its own output (systemd 252).
 */
export function outputClosed(fd = 1): boolean {
  const p = libcPoll();
  if (!p) return false;
  const pollfd = new Int32Array(2); // struct pollfd { int fd; short events; short revents; }
  pollfd[0] = fd;
  if (p(pollfd, 1, 0) !== 1) return false;
  const revents = new Int16Array(pollfd.buffer)[3] ?? 0;
  return (revents & (POLLERR | POLLHUP)) !== 0;
}
