import type { Socket } from "bun";

/**
 * What a socket has not taken yet. Bun's socket.write is unbuffered: it returns how many bytes the
 * kernel accepted. The rest waits here, and the side that produced it is paused until the socket's
 * drain event empties the queue, so a slow reader holds back its writer instead of filling memory.
 */
export class Outbox {
  private readonly queue: Uint8Array[] = [];
  bytes = 0;

  get empty(): boolean {
    return this.queue.length === 0;
  }

  /** Writes what the socket takes and queues the rest; true when nothing is left queued. */
  send(socket: Socket<unknown>, data: Uint8Array): boolean {
    if (data.length === 0) return this.queue.length === 0;
    if (this.queue.length > 0) {
      this.queue.push(data);
      this.bytes += data.length;
      return false;
    }
    const written = socket.write(data);
    if (written === data.length) return true;
    // -1 means the socket is closed; its close handler ends the exchange, the bytes are dropped there
    const rest = written > 0 ? data.subarray(written) : data;
    this.queue.push(rest);
    this.bytes += rest.length;
    return false;
  }

  /**
   * Like send, for bytes in a buffer that is reused once this returns (the Scratch): what the
   * socket does not take at once is copied into the queue.
   */
  sendCopy(socket: Socket<unknown>, buf: Buffer, length: number): boolean {
    if (length === 0) return this.queue.length === 0;
    const written = this.queue.length > 0 ? 0 : socket.write(buf, 0, length);
    if (written === length) return true;
    const rest = Buffer.from(buf.subarray(Math.max(written, 0), length));
    this.queue.push(rest);
    this.bytes += rest.length;
    return false;
  }

  /** Called on drain: writes what is queued; true when the queue is empty. */
  flush(socket: Socket<unknown>): boolean {
    while (this.queue.length > 0) {
      const head = this.queue[0] as Uint8Array;
      const written = socket.write(head);
      if (written === head.length) {
        this.queue.shift();
        this.bytes -= written;
        continue;
      }
      if (written > 0) {
        this.queue[0] = head.subarray(written);
        this.bytes -= written;
      }
      return false;
    }
    return true;
  }

  clear(): void {
    this.queue.length = 0;
    this.bytes = 0;
  }
}
