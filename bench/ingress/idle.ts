import type { Socket } from "bun";

/**
 * Opens n keep-alive connections to a proxy, sends one request on each and waits for its answer,
 * then leaves them idle: what a proxy holds per open but quiet client. Opens in batches so that the
 * listen backlog is never the limit. Needs about n + 100 file descriptors (Bun raises its soft
 * RLIMIT_NOFILE to the hard limit at start; the machine's hard limit here is 20000).
 */
export async function idleConnections(
  port: number,
  n: number,
  host: string,
): Promise<{ open: number; close(): void }> {
  const sockets: Socket<{ done: () => void }>[] = [];
  const request = `GET / HTTP/1.1\r\nHost: ${host}\r\n\r\n`;
  const batch = 250;
  for (let start = 0; start < n; start += batch) {
    const opened = await Promise.allSettled(
      Array.from({ length: Math.min(batch, n - start) }, async () => {
        const answered = Promise.withResolvers<void>();
        const socket = await Bun.connect<{ done: () => void }>({
          hostname: "127.0.0.1",
          port,
          data: { done: answered.resolve },
          socket: {
            data(s) {
              s.data.done();
            },
            close(s) {
              s.data.done();
            },
          },
        });
        socket.write(request);
        await answered.promise;
        return socket;
      }),
    );
    for (const result of opened) if (result.status === "fulfilled") sockets.push(result.value);
  }
  return {
    open: sockets.length,
    close() {
      for (const socket of sockets) socket.end();
    },
  };
}
