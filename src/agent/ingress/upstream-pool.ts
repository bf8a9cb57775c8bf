import type { Socket, SocketHandler } from "bun";
import { Outbox } from "./outbox.ts";
import type { Scratch } from "./scratch.ts";

/** Where a route's service listens: its systemd socket (local) or a peer's ingress (remote). */
export interface UpstreamTarget {
  key: string;
  unix?: string;
  hostname?: string;
  port?: number;
}

/** The client connection that currently owns an upstream connection gets its events. */
export interface UpstreamOwner {
  onUpstreamData(conn: UpstreamConn, data: Buffer): void;
  onUpstreamDrain(conn: UpstreamConn): void;
  onUpstreamClose(conn: UpstreamConn): void;
  /** an exception escaped one of the above */
  fail(error: unknown): void;
}

export class UpstreamConn {
  owner: UpstreamOwner | null = null;
  readonly out = new Outbox();
  /** requests sent on this connection; above 1 it was reused from the pool */
  uses = 0;
  idleSince = 0;
  closed = false;
  paused = false;
  socket!: Socket<UpstreamConn>;

  constructor(
    readonly target: UpstreamTarget,
    readonly pool: UpstreamPool,
  ) {}

  send(data: Uint8Array): boolean {
    return this.out.send(this.socket, data);
  }

  /** Sends what the scratch buffer holds now (copying what the socket does not take at once). */
  sendScratch(built: Scratch): boolean {
    return this.out.sendCopy(this.socket, built.buf, built.length);
  }

  setReading(on: boolean): void {
    if (on === !this.paused || this.closed) return;
    this.paused = !on;
    if (on) this.socket.resume();
    else this.socket.pause();
  }
}

const handlers: SocketHandler<UpstreamConn> = {
  data(socket, data) {
    const conn = socket.data;
    try {
      if (conn.owner) conn.owner.onUpstreamData(conn, data);
      else conn.pool.destroy(conn); // bytes on an idle connection: the service is confused, drop it
    } catch (error) {
      conn.owner?.fail(error);
    }
  },
  drain(socket) {
    const conn = socket.data;
    try {
      conn.out.flush(socket);
      conn.owner?.onUpstreamDrain(conn);
    } catch (error) {
      conn.owner?.fail(error);
    }
  },
  close(socket) {
    const conn = socket.data;
    conn.closed = true;
    conn.pool.forgetIdle(conn);
    try {
      conn.owner?.onUpstreamClose(conn);
    } catch (error) {
      conn.owner?.fail(error);
    }
  },
  error() {
    // close follows; the owner answers 502 there
  },
};

/**
 * Keep-alive connections to upstream sockets, kept per target. Connecting to a unix socket is cheap,
 * but a pooled connection saves the accept and the service's per-connection set-up on every request.
 * Idle connections are closed after idleMs (below the services' own keep-alive timeouts), and all
 * of a hash's idle connections are dropped before the idle scaler stops it.
 */
export class UpstreamPool {
  private readonly idle = new Map<string, UpstreamConn[]>();

  constructor(private readonly options: { idleMs: number; maxIdlePerTarget: number }) {}

  /** A pooled connection, or undefined when none is idle (then call connect). */
  take(target: UpstreamTarget, owner: UpstreamOwner): UpstreamConn | undefined {
    const list = this.idle.get(target.key);
    if (list === undefined) return undefined;
    let conn = list.pop();
    while (conn?.closed) conn = list.pop();
    if (conn === undefined) return undefined;
    conn.owner = owner;
    conn.uses++;
    return conn;
  }

  async connect(target: UpstreamTarget, owner: UpstreamOwner): Promise<UpstreamConn> {
    const conn = new UpstreamConn(target, this);
    conn.socket =
      target.unix !== undefined
        ? await Bun.connect<UpstreamConn>({ unix: target.unix, socket: handlers, data: conn })
        : await Bun.connect<UpstreamConn>({
            hostname: target.hostname as string,
            port: target.port as number,
            socket: handlers,
            data: conn,
          });
    conn.owner = owner;
    conn.uses = 1;
    return conn;
  }

  /** Returns a connection whose exchange ended cleanly; it is reused or, if the pool is full, closed. */
  release(conn: UpstreamConn, now: number): void {
    conn.owner = null;
    if (conn.closed || !conn.out.empty) {
      this.destroy(conn);
      return;
    }
    let list = this.idle.get(conn.target.key);
    if (list === undefined) {
      list = [];
      this.idle.set(conn.target.key, list);
    }
    if (list.length >= this.options.maxIdlePerTarget) {
      this.destroy(conn);
      return;
    }
    conn.setReading(true); // an idle connection must still notice the service closing it
    conn.idleSince = now;
    list.push(conn);
  }

  /** Closes a connection at once (an aborted exchange, or an unusable connection). */
  destroy(conn: UpstreamConn): void {
    conn.owner = null;
    this.forgetIdle(conn);
    if (!conn.closed) {
      conn.closed = true;
      conn.socket.terminate();
    }
  }

  forgetIdle(conn: UpstreamConn): void {
    const list = this.idle.get(conn.target.key);
    const index = list?.indexOf(conn) ?? -1;
    if (list && index >= 0) list.splice(index, 1);
  }

  /** Closes every idle connection to a target (before its service is stopped). */
  dropIdle(key: string): void {
    const list = this.idle.get(key);
    if (list === undefined) return;
    this.idle.delete(key);
    for (const conn of list) this.destroy(conn);
  }

  /** Closes connections idle for longer than idleMs; the oldest are at the front of each list. */
  sweep(now: number): void {
    for (const [key, list] of this.idle) {
      while (list.length > 0 && now - (list[0] as UpstreamConn).idleSince >= this.options.idleMs) {
        this.destroy(list[0] as UpstreamConn);
      }
      if (list.length === 0) this.idle.delete(key);
    }
  }

  idleCount(key?: string): number {
    if (key !== undefined) return this.idle.get(key)?.length ?? 0;
    let n = 0;
    for (const list of this.idle.values()) n += list.length;
    return n;
  }

  close(): void {
    for (const key of [...this.idle.keys()]) this.dropIdle(key);
  }
}
