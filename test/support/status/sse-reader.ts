/** Test support: reads server-sent events from a response body, each wait bounded by a time-out. */
export interface SseEvent {
  event: string;
  data: string;
}

export class SseReader {
  private readonly reader: {
    read(): Promise<{ done: boolean; value?: Uint8Array }>;
    cancel(): Promise<void>;
  };
  private readonly decoder = new TextDecoder();
  private buffer = "";

  constructor(body: ReadableStream<Uint8Array>) {
    this.reader = body.getReader();
  }

  /** The next event (optionally of one type, skipping others); throws after `timeoutMs`. */
  async next(type?: string, timeoutMs = 3000): Promise<SseEvent> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const end = this.buffer.indexOf("\n\n");
      if (end >= 0) {
        const block = this.buffer.slice(0, end);
        this.buffer = this.buffer.slice(end + 2);
        const ev = parse(block);
        if (ev && (type === undefined || ev.event === type)) return ev;
        continue;
      }
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no ${type ?? "SSE"} event within ${timeoutMs} ms`);
      let timer: ReturnType<typeof setTimeout> | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no ${type ?? "SSE"} event within ${timeoutMs} ms`)), left);
      });
      try {
        const { done, value } = await Promise.race([this.reader.read(), timeout]);
        if (done) throw new Error("the event stream ended");
        this.buffer += this.decoder.decode(value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  async close(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }
}

function parse(block: string): SseEvent | undefined {
  let event = "message";
  const data: string[] = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) event = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  return data.length ? { event, data: data.join("\n") } : undefined;
}
