import { ChunkedScanner } from "./chunked.ts";
import type { HttpParseError, RequestHead } from "./http1-head.ts";
import type { ResponseHead } from "./response-head.ts";

enum Mode {
  Length,
  Chunked,
  UntilClose,
  Done,
}

/**
 * Where a message body ends (RFC 9112 6.3), for bodies passed on as bytes in their own framing:
 * a Content-Length count, a chunked scan, or "until the connection closes". The proxy feeds it each
 * chunk and sends on only the bytes before the returned index; bytes after it belong to the next
 * message.
 */
export class BodyFraming {
  /** Most requests have no body: they share one finished framing instead of allocating one each. */
  private static readonly NONE = new BodyFraming(Mode.Done, 0);
  private mode: Mode;
  private left = 0;
  private readonly chunks: ChunkedScanner | null = null;
  /** body bytes seen so far (chunk data only, for chunked bodies) */
  bytes = 0;

  private constructor(mode: Mode, length: number) {
    this.mode = mode;
    this.left = length;
    if (mode === Mode.Chunked) this.chunks = new ChunkedScanner();
  }

  static forRequest(head: RequestHead): BodyFraming {
    if (head.chunked) return new BodyFraming(Mode.Chunked, 0);
    return head.contentLength > 0 ? new BodyFraming(Mode.Length, head.contentLength) : BodyFraming.NONE;
  }

  /** Responses to HEAD, and 204 and 304, never have a body whatever their headers say. */
  static forResponse(res: ResponseHead, method: string): BodyFraming {
    if (method === "HEAD" || res.status === 204 || res.status === 304) return new BodyFraming(Mode.Done, 0);
    if (res.chunked) return new BodyFraming(Mode.Chunked, 0);
    if (res.contentLength >= 0)
      return new BodyFraming(res.contentLength === 0 ? Mode.Done : Mode.Length, res.contentLength);
    return new BodyFraming(Mode.UntilClose, 0);
  }

  get done(): boolean {
    return this.mode === Mode.Done;
  }

  /** the body ends when the sender closes the connection */
  get untilClose(): boolean {
    return this.mode === Mode.UntilClose;
  }

  /**
   * Index in buf (>= start) just past this body's last byte there; buf.length if the body goes on.
   * Throws HttpParseError (with errorStatus) on malformed chunked framing.
   */
  end(buf: Uint8Array, start: number, errorStatus: HttpParseError["status"] & (400 | 502)): number {
    switch (this.mode) {
      case Mode.Length: {
        const take = Math.min(this.left, buf.length - start);
        this.left -= take;
        this.bytes += take;
        if (this.left === 0) this.mode = Mode.Done;
        return start + take;
      }
      case Mode.Chunked: {
        const scanner = this.chunks as ChunkedScanner;
        const stop = scanner.feed(buf, start, buf.length, errorStatus);
        this.bytes = scanner.dataBytes;
        if (stop < 0) return buf.length;
        this.mode = Mode.Done;
        return stop;
      }
      case Mode.UntilClose:
        this.bytes += buf.length - start;
        return buf.length;
      default:
        return start;
    }
  }

  /** The sender closed: a close-delimited body is complete. */
  closed(): void {
    if (this.mode === Mode.UntilClose) this.mode = Mode.Done;
  }
}
