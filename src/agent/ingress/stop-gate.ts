/**
 * Per-hash gate between the idle scaler and the proxy. While a hash's service is being stopped the
 * gate is closed: new requests for it wait, and proceed when the stop has completed, when their
 * connection reaches the still-listening socket and systemd starts the service again. Without the
 * gate a request could be sent to the old process just as `systemctl stop` kills it.
 *
 * The scaler closes the gate in the same synchronous step in which it sees the hash idle, and the
 * proxy counts a request in flight in the same step in which it passes the gate, so on one event
 * loop there is no instant at which a request is neither counted nor held back.
 */
export class StopGate {
  private readonly closed = new Map<string, { promise: Promise<void>; open: () => void; waiters: number }>();

  /** undefined when the hash may be entered now; the fast path allocates nothing */
  wait(hash: string): Promise<void> | undefined {
    if (this.closed.size === 0) return undefined;
    const gate = this.closed.get(hash);
    if (gate === undefined) return undefined;
    gate.waiters++;
    return gate.promise;
  }

  close(hash: string): void {
    if (this.closed.has(hash)) throw new Error(`stop gate of ${hash} is already closed`);
    const { promise, resolve } = Promise.withResolvers<void>();
    this.closed.set(hash, { promise, open: resolve, waiters: 0 });
  }

  open(hash: string): void {
    const gate = this.closed.get(hash);
    if (gate === undefined) return;
    this.closed.delete(hash);
    gate.open();
  }

  isClosed(hash: string): boolean {
    return this.closed.has(hash);
  }

  /** how many requests are waiting on a closed gate (for tests and status) */
  waiters(hash: string): number {
    return this.closed.get(hash)?.waiters ?? 0;
  }
}
