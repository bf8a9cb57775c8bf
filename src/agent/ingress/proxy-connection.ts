import type { Socket } from "bun";
import type { AliasRoute } from "../../model/alias-route.ts";
import { isAliasName } from "../../model/names.ts";
import {
  bypassCookieLine,
  decideAccess,
  isLocalClient,
  safeLocation,
  takeBypassParam,
  type Via,
} from "./access.ts";
import { BodyFraming } from "./body-framing.ts";
import { BYPASS_COOKIE_MAX_AGE_SEC } from "./bypass-token.ts";
import { goneBody } from "./gone.ts";
import { HttpParseError, parseRequestHead, type RequestHead } from "./http1-head.ts";
import type { InFlightEntry } from "./inflight.ts";
import { Outbox } from "./outbox.ts";
import { type ProxyContext, SWEEP_MS } from "./proxy-context.ts";
import { parseResponseHead, type ResponseHead } from "./response-head.ts";
import { notLiveMessage, parseHost, routeTarget } from "./route.ts";
import { scratch } from "./scratch.ts";
import { chooseAliasTarget, type StickyConfig, stickyCookieHash, stickyFor } from "./sticky.ts";
import type { AccessControl } from "./types.ts";
import {
  type AnswerExtras,
  type ForwardTo,
  forwardedValues,
  plainResponse,
  writeUpstreamRequestHead,
  writeWithLine,
} from "./upstream-head.ts";
import type { UpstreamConn, UpstreamOwner, UpstreamTarget } from "./upstream-pool.ts";

enum Phase {
  /** reading a request head (or idle between requests) */
  Head,
  /** routed; waiting for the stop gate or for a connection to the service */
  Waiting,
  /** request and response flowing */
  Exchange,
  /** after a 101: bytes pass both ways untouched (WebSocket) */
  Tunnel,
  Closed,
}

enum Deadline {
  None,
  /** keep-alive connection with no request: close it */
  Idle,
  /** a request head is arriving too slowly: 408 */
  Head,
  /** the service has been silent too long before its response head: 504 */
  Upstream,
  /** the client has not taken queued bytes for idleTimeoutSec: cut it */
  Stalled,
}

/** a Buffer needle: Buffer.indexOf with a string needle measured five times slower */
const CRLFCRLF = Buffer.from("\r\n\r\n");
/** A service's response head larger than this is refused (502). */
const MAX_RESPONSE_HEAD = 64 * 1024;
/** Added to a response the ingress closes after when the service's own head does not say so. */
const CLOSE_LINE = Buffer.from("connection: close\r\n");
const NO_LINE = Buffer.alloc(0);
/** How often a request for a local hash whose socket is not there yet tries again. */
const SOCKET_RETRY_MS = 50;
/** Client bytes held while a request is routed or connected before the client is paused. */
const PIPELINE_BUFFER = 64 * 1024;
/**
 * 1xx responses passed on per request. A service sends one 100 Continue and perhaps a few 103 Early
 * Hints; a stream of them would keep a client waiting forever and grow the ingress's stack.
 */
const MAX_INTERIM_RESPONSES = 8;
/** Methods that are safe to send again when a pooled connection turns out closed (RFC 9110 9.2.2). */
const IDEMPOTENT = new Set(["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"]);

/**
 * One client connection: parses request heads, routes each request, and passes bytes between the
 * client and the hash's socket with their original framing (Content-Length or chunked; HTTP/1.1
 * pipelining is served in order). Every write that the receiving socket can't take at once pauses
 * the sending side until drain, so bodies stream through in bounded memory in both directions.
 *
 * Written against raw sockets rather than Bun.serve + fetch because that pair measured about 0.5-0.6x
 * nginx here (bench/ingress), and because owning the bytes gives the rest for free: a configurable
 * header limit, WebSocket pass-through without re-framing, and an exact "last byte written" for
 * in-flight counts.
 *
 * Longer than the other files on purpose: it is one state machine (phases Head -> Waiting ->
 * Exchange [-> Tunnel] -> Head | Closed), and its transitions are easier to check side by side than
 * spread over files. Parsing, framing, routing and head building live in their own pure modules.
 */
export class ProxyConnection implements UpstreamOwner {
  private phase = Phase.Head;
  /** client bytes read but not yet used: a partial head, or the start of a pipelined request */
  private buf: Buffer | null = null;
  deadline = 0;
  private deadlineKind = Deadline.Idle;
  private readonly out = new Outbox();
  private clientPaused = false;
  private closeWhenFlushed = false;

  private head: RequestHead | null = null;
  private hash = "";
  private entry: InFlightEntry | null = null;
  private target: UpstreamTarget | null = null;
  private up: UpstreamConn | null = null;
  /** how the head sent upstream is built (at each attach: a retry on a new connection sends it again) */
  private forward: ForwardTo | null = null;
  private reqBody: BodyFraming | null = null;
  private retryable = false;
  /** part of a response head that is still incomplete */
  private resBuf: Buffer | null = null;
  /** null until the response head has been read */
  private resBody: BodyFraming | null = null;
  private resStarted = false;
  /** when a request waiting for its hash's socket to appear gives up (0: not waiting) */
  private socketWaitUntil = 0;
  /** 1xx responses passed on for this request */
  private interim = 0;
  private upReusable = false;
  private clientAddress: string | undefined;
  /** whether the client is on this host (private previews), once asked */
  private local: boolean | undefined;
  private viaPeer = false;
  /** Set-Cookie line of a sticky alias pin for this response (aliasTarget); null: none */
  private cookieLine: Buffer | null = null;
  /** request counting (ctx.requestStats): when this request was routed (performance.now()); -1: not counted */
  private countFrom = -1;
  /** the alias this request came through, for its counts; null: by hash */
  private countAlias: string | null = null;

  /**
   * secure: the client came through the TLS listener (tls.ts): X-Forwarded-Proto https, a Secure
   * bypass cookie, no redirect to HTTPS. Its handshake must end within headerTimeoutSec (a slow or
   * partial handshake is cut like an idle connection), then the idle timeout applies (onHandshake).
   */
  constructor(
    private readonly socket: Socket<ProxyConnection>,
    private readonly ctx: ProxyContext,
    readonly secure = false,
  ) {
    const { idleTimeoutSec, headerTimeoutSec } = ctx.config;
    this.setDeadline(Deadline.Idle, secure ? Math.min(idleTimeoutSec, headerTimeoutSec) : idleTimeoutSec);
  }

  /** The TLS handshake ended: a failed one is cut, a done one waits for its request as any connection. */
  onHandshake(ok: boolean): void {
    if (!ok) {
      this.abort();
      return;
    }
    if (this.phase === Phase.Head && this.buf === null && this.deadlineKind === Deadline.Idle)
      this.setDeadline(Deadline.Idle, this.ctx.config.idleTimeoutSec);
  }

  // ---- client events ----

  onClientData(data: Buffer): void {
    switch (this.phase) {
      case Phase.Head: {
        // bytes before `seen` were scanned by the previous read: a head that trickles in is not
        // scanned again for each byte
        const seen = this.buf?.length ?? 0;
        this.buf = this.buf === null ? data : Buffer.concat([this.buf, data]);
        this.readHead(seen);
        return;
      }
      case Phase.Exchange:
        if (!this.reqDone) {
          this.forwardBody(data);
          return;
        }
        break; // a pipelined request: below
      case Phase.Tunnel:
        if (this.up !== null && !this.up.send(data)) this.updateReading();
        return;
      case Phase.Closed:
        return;
    }
    // a pipelined request behind the current one: keep it and stop reading until its turn
    this.buf = this.buf === null ? data : Buffer.concat([this.buf, data]);
    this.updateReading();
  }

  onClientDrain(): void {
    if (!this.out.flush(this.socket)) return;
    if (this.deadlineKind === Deadline.Stalled) {
      this.deadline = 0;
      this.deadlineKind = Deadline.None;
    }
    if (this.closeWhenFlushed) {
      this.socket.end();
      return;
    }
    if (this.phase === Phase.Exchange && this.resBody?.done === true && this.up === null)
      this.completeExchange();
    else this.updateReading();
  }

  onClientClose(): void {
    if (this.phase === Phase.Closed && this.entry === null && this.up === null) return;
    this.phase = Phase.Closed;
    if (this.up !== null) this.ctx.pool.destroy(this.up); // the service sees the client go away
    this.up = null;
    this.leave();
  }

  /** After an unexpected error in this connection's code: log it, release everything and cut it. */
  fail(error: unknown): void {
    this.ctx.log("error", "ingress connection failed", {
      error: error instanceof Error ? error.stack : String(error),
    });
    this.abort();
  }

  /** For a graceful stop: closes the connection if no request is under way on it. */
  closeIfIdle(): void {
    if (this.phase === Phase.Head && this.buf === null) this.close();
  }

  /** Called by the server's sweep when the deadline has passed. */
  onDeadline(): void {
    const kind = this.deadlineKind;
    this.deadline = 0;
    if (kind === Deadline.Idle) this.close();
    else if (kind === Deadline.Head) this.answer(408, "request head not received in time", true);
    else if (kind === Deadline.Upstream) {
      const seconds = this.ctx.config.upstreamTimeoutSec;
      this.answer(504, `hash ${this.hash} did not answer within ${seconds} s`, true, this.hash);
    } else if (kind === Deadline.Stalled) this.abort();
  }

  // ---- request side ----

  /** Reads the head in this.buf if it is complete; `seen`: how many of its bytes an earlier read scanned. */
  private readHead(seen = 0): void {
    const buf = this.buf as Buffer;
    const max = this.ctx.config.maxHeaderBytes;
    const end = buf.indexOf(CRLFCRLF, Math.max(0, seen - 3));
    if (end < 0) {
      if (buf.length > max) {
        this.answer(431, `request head larger than ${max} bytes`, true);
        return;
      }
      if (hasBareLf(buf, Math.max(0, seen - 1))) {
        // RFC 9112 2.2 allows a recipient to take a bare LF as a line end; this one refuses it (the
        // head parser refuses bare LF too), at once rather than after the header timeout
        this.answer(400, "bare LF in request head: lines end with CRLF", true);
        return;
      }
      if (buf.length === 2 && buf[0] === 13 && buf[1] === 10) this.buf = null; // RFC 9112 2.2: skip an empty line
      if (this.deadlineKind !== Deadline.Head)
        this.setDeadline(Deadline.Head, this.ctx.config.headerTimeoutSec);
      return;
    }
    if (end + 4 > max) {
      this.answer(431, `request head larger than ${max} bytes`, true);
      return;
    }
    const text = buf.toString("latin1", buf[0] === 13 && buf[1] === 10 ? 2 : 0, end);
    this.buf = end + 4 < buf.length ? buf.subarray(end + 4) : null;
    let head: RequestHead;
    try {
      head = parseRequestHead(text);
    } catch (error) {
      if (error instanceof HttpParseError) {
        this.answer(error.status, error.message, true);
        return;
      }
      throw error;
    }
    this.route(head);
  }

  private route(head: RequestHead): void {
    const { ctx } = this;
    this.head = head;
    if (head.hop !== undefined && !this.hopProven(head)) {
      // a client posing as a member: route it as any client, its forwarded headers rewritten
      ctx.stats.unprovenHops++;
      head.hop = undefined;
      head.hopHash = undefined;
    }
    const hasBody = head.contentLength > 0 || head.chunked;
    const close = hasBody || !head.keepAlive;
    const hopHash = head.hop === undefined ? undefined : (head.hopHash ?? "");
    const routing = routeTarget(
      { host: head.host, target: head.target, hopHash },
      ctx.config.zone,
      ctx.aliases,
    );
    if (!routing.ok) {
      const location = routing.status === 308 ? routing.location : undefined;
      this.answer(routing.status, routing.message, close, undefined, { location });
      return;
    }
    if (this.redirectsToHttps(head, close)) return;
    const hash = routing.alias === undefined ? routing.hash : this.aliasTarget(routing.alias, head);
    // a forwarded request's alias is the label of its Host (the client's): read once, for the
    // sticky use and the counts noted here, where the hash is served
    const hopAlias =
      routing.via === "hop" && (head.stickyCookies !== undefined || ctx.requestStats !== undefined)
        ? this.hopAlias(head)
        : null;
    if (hopAlias !== null && head.stickyCookies !== undefined)
      this.noteHopSticky(hopAlias, head.stickyCookies, hash);
    // before anything looks the hash up: a refusal must cost and say what an unknown hash does
    if (ctx.access !== undefined && !this.accessGranted(ctx.access, head, routing, close)) return;
    const route = ctx.routes.resolveHash(hash, head.hop !== undefined);
    if (route.kind === "none") {
      const gone = ctx.gone?.lookup(hash);
      if (gone === undefined) this.answer(404, notLiveMessage(hash), close, hash);
      else this.answer(410, "gone", close, hash, { body: goneBody(gone, ctx.config.zone, head.accept) });
      return;
    }
    if (route.kind === "remote" && head.hop !== undefined) {
      const message = `hash ${hash} was forwarded here by ${head.hop} but is not live on this member`;
      this.answer(502, message, true, hash);
      return;
    }
    const maxBody = ctx.config.maxRequestBodyBytes;
    if (maxBody > 0 && head.contentLength > maxBody) {
      this.answer(413, `request body larger than ${maxBody} bytes`, true, hash);
      return;
    }
    this.hash = hash;
    if (ctx.requestStats !== undefined)
      this.countStart(route.kind === "local", routing.alias?.name ?? hopAlias);
    this.reqBody = BodyFraming.forRequest(head);
    this.retryable = !hasBody && head.upgrade === undefined && IDEMPOTENT.has(head.method);
    this.clientAddress ??= this.socket.remoteAddress;
    const { clientAddress } = this;
    const hop = route.kind === "remote" ? this.hopTo(head, hash, clientAddress) : undefined;
    this.viaPeer = hop !== undefined;
    this.forward = {
      path: routing.path,
      prefix: routing.prefix,
      clientAddress,
      hop,
      defaultHost: head.host === undefined ? `${hash}.${ctx.config.zone}` : undefined,
      secure: this.secure,
    };
    this.target = ctx.targetFor(route);
    this.phase = Phase.Waiting;
    this.setDeadline(Deadline.Upstream, ctx.config.upstreamTimeoutSec);
    this.updateReading();
    const wait = route.kind === "local" ? ctx.gate.wait(hash) : undefined;
    if (wait === undefined) this.enter();
    else wait.then(() => this.safely(() => this.enter()));
  }

  /**
   * The hash an alias request goes to (sticky.ts): a valid sticky cookie's, else the client
   * address's share of the split. Sets the cookie line the response will carry when it pins anew.
   */
  private aliasTarget(alias: { name: string; route: AliasRoute }, head: RequestHead): string {
    const { ctx } = this;
    const sticky = ctx.sticky;
    const on = sticky !== undefined && stickyFor(sticky, alias.name);
    if (!on && alias.route.split === undefined) return alias.route.hash;
    this.clientAddress ??= this.socket.remoteAddress;
    const cookie = on ? stickyCookieHash(head.stickyCookies, alias.name) : undefined;
    const choice = chooseAliasTarget(alias.route, alias.name, cookie, this.clientAddress, on, this.isLive);
    if (!on) return choice.hash;
    const maxAge = (sticky as StickyConfig).maxAgeSec;
    if (choice.pinned) ctx.stickyUse?.note(choice.hash, ctx.now, maxAge);
    else this.cookieLine = ctx.cookieLine(alias.name, choice.hash, maxAge, this.secure);
    return choice.hash;
  }

  /**
   * A peer forwarded a request of `alias` that a sticky cookie pinned to `hash`: the sticky use is
   * noted here, on the member that runs the hash (only its report has a row to publish it in).
   * The cookie must name this very hash.
   */
  private noteHopSticky(alias: string, cookies: string, hash: string): void {
    const { sticky, stickyUse } = this.ctx;
    if (sticky === undefined || stickyUse === undefined || !stickyFor(sticky, alias)) return;
    if (stickyCookieHash(cookies, alias) === hash) stickyUse.note(hash, this.ctx.now, sticky.maxAgeSec);
  }

  private readonly isLive = (hash: string): boolean => this.ctx.routes.resolveHash(hash).kind !== "none";

  /**
   * Private previews (access.ts): true if the request may go on; otherwise it was answered, with
   * the 404 of an unknown hash (byte for byte: the same call as for a hash no member serves), or
   * with the redirect that takes ?hashd-bypass= out of the URL (and sets the cookie).
   */
  private accessGranted(
    access: AccessControl,
    head: RequestHead,
    routing: { hash: string; via: Via; prefix: string | undefined },
    close: boolean,
  ): boolean {
    const { hash, via } = routing;
    // the common case, without allocating: open to everyone, and no parameter to take out
    const open = access.mode === "public" || via === "alias" || via === "hop";
    if (open && !head.target.includes("?")) return true;
    const param = takeBypassParam(head.target);
    const secret = access.secret();
    const now = Date.now();
    const decision = decideAccess(
      {
        mode: access.mode,
        via,
        hash,
        aliased: access.mode === "aliased" && (via === "host" || via === "path") && access.aliased(hash),
        local: this.fromThisHost(access),
        header: head.bypass,
        cookies: head.bypassCookies ?? [],
        query: param?.token,
      },
      secret,
      now,
    );
    if (decision.kind === "allow") return true;
    if (decision.kind === "deny" || param === undefined) {
      this.ctx.stats.accessDenied++;
      this.answer(404, notLiveMessage(hash), close, hash);
      return false;
    }
    const location = safeLocation(param.rest);
    if (location === undefined) {
      this.answer(400, "a path starting with // or /\\ cannot carry hashd-bypass", close);
      return false;
    }
    const cookie =
      decision.cookie && secret !== undefined
        ? bypassCookieLine(
            secret.cookieFor(hash, now),
            routing.prefix,
            BYPASS_COOKIE_MAX_AGE_SEC,
            this.secure,
          )
        : undefined;
    this.answer(307, "see the same URL without hashd-bypass", close, undefined, {
      location,
      setCookie: cookie,
    });
    return false;
  }

  /** Whether this connection comes from this host (a service through HASHD_INGRESS); asked once. */
  private fromThisHost(access: AccessControl | undefined): boolean {
    if (this.local === undefined) {
      const { remoteAddress, localAddress } = this.socket;
      this.local = access?.isLocal
        ? access.isLocal(remoteAddress, localAddress)
        : isLocalClient(remoteAddress, localAddress);
    }
    return this.local;
  }

  /**
   * tls.redirectHttp: a request on the plain listener gets 308 to https://<same host>/<same target>,
   * except from this host (services reach each other through HASHD_INGRESS over plain HTTP) and
   * proven hops (members forward to each other's plain port). Asked only for a request that routed.
   */
  private redirectsToHttps(head: RequestHead, close: boolean): boolean {
    const tls = this.ctx.config.tls;
    if (this.secure || tls === undefined || !tls.redirectHttp || head.host === undefined) return false;
    if (head.hop !== undefined || this.fromThisHost(this.ctx.access)) return false;
    const name = hostName(head.host);
    const port = this.ctx.tlsPort ?? tls.port;
    const authority = port === 443 ? name : `${name}:${port}`;
    const target = head.target.startsWith("/") ? head.target : "/";
    this.answer(308, "this ingress answers over HTTPS", close, undefined, {
      location: `https://${authority}${target}`,
    });
    return true;
  }

  private hopProven(head: RequestHead): boolean {
    const auth = this.ctx.hopAuth;
    if (auth === undefined) return false;
    const fields = {
      member: head.hop as string,
      hash: head.hopHash ?? "",
      method: head.method,
      target: head.target,
      forwardedFor: head.forwardedFor ?? "",
      forwardedHost: head.forwardedHost ?? "",
      forwardedProto: head.forwardedProto ?? "",
    };
    return auth.verify(head.hopProof, fields, Date.now());
  }

  /** The hop header for a peer, signed over what the peer will trust from it. */
  private hopTo(head: RequestHead, hash: string, clientAddress: string): NonNullable<ForwardTo["hop"]> {
    const { hopAuth, config } = this.ctx;
    const member = config.member;
    if (hopAuth === undefined) return { member, hash, proof: undefined };
    const fields = {
      member,
      hash,
      method: head.method,
      target: head.target,
      ...forwardedValues(head, clientAddress, this.secure),
    };
    return { member, hash, proof: hopAuth.sign(fields, Date.now()) };
  }

  /** Counts the request and gets it a connection; runs in the same tick as the gate check. */
  private enter(): void {
    if (this.phase !== Phase.Waiting) return;
    const { ctx } = this;
    this.entry = ctx.inflight.enter(this.hash);
    const head = this.head as RequestHead;
    // an upgrade becomes a tunnel and HTTP/1.0 closes after one response: neither may use the pool
    const pooled = head.upgrade === undefined && head.minor === 1;
    const conn = pooled ? ctx.pool.take(this.target as UpstreamTarget, this) : undefined;
    if (conn !== undefined) this.attach(conn);
    else this.connect();
  }

  private connect(): void {
    this.ctx.pool.connect(this.target as UpstreamTarget, this).then(
      (conn) => this.safely(() => this.connected(conn)),
      (error: unknown) =>
        this.safely(() => {
          if (this.phase !== Phase.Waiting) return;
          const code = (error as { code?: string }).code ?? String(error);
          if (this.socketComing(code)) {
            this.socketWaitUntil ||= Date.now() + this.ctx.config.socketWaitSec * 1000;
            if (Date.now() < this.socketWaitUntil) {
              setTimeout(() => this.safely(() => this.connectAgain()), SOCKET_RETRY_MS);
              return;
            }
          }
          this.ctx.log("warn", "upstream connect failed", {
            hash: this.hash,
            target: this.target?.key,
            code,
          });
          this.answer(502, `hash ${this.hash}: cannot connect to its socket (${code})`, true, this.hash);
        }),
    );
  }

  /**
   * A hash routed here whose socket file is missing (or not listening) is in most cases one whose
   * socket is being made: an activation in progress (a revived hash has its alias before its
   * socket, and may first wait for its retirement's stop to end), or a socket the unit watch
   * re-creates (within its 2 s period). The request waits for it, as a connection to a listening
   * systemd socket would, up to socketWaitSec and the upstream deadline; if the hash is meanwhile
   * routed to another member, it gets a 502 (the request cannot change course half way).
   */
  private socketComing(code: string): boolean {
    return (code === "ENOENT" || code === "ECONNREFUSED") && this.target?.unix !== undefined;
  }

  /** whether this request came from a peer (then it is never forwarded again) */
  private get viaHop(): boolean {
    return this.head?.hop !== undefined;
  }

  private connectAgain(): void {
    if (this.phase !== Phase.Waiting) return;
    const route = this.ctx.routes.resolveHash(this.hash, this.viaHop);
    if (route.kind === "remote") {
      this.answer(502, `hash ${this.hash}: its socket here went away before it answered`, true, this.hash);
      return;
    }
    // "none": the hash is between a retirement here and its revival (an alias came back to it),
    // or gone for good; either way the request waits, until socketWaitSec or the upstream deadline
    if (route.kind === "local") {
      this.target = this.ctx.targetFor(route);
      this.connect();
    } else if (Date.now() < this.socketWaitUntil)
      setTimeout(() => this.safely(() => this.connectAgain()), SOCKET_RETRY_MS);
    else this.answer(502, `hash ${this.hash} is no longer live here`, true, this.hash);
  }

  private connected(conn: UpstreamConn): void {
    if (this.phase !== Phase.Waiting) {
      this.ctx.pool.destroy(conn); // the client left while we connected
      return;
    }
    if (conn.closed) {
      this.answer(502, `hash ${this.hash}: its socket closed the connection at once`, true, this.hash);
      return;
    }
    this.attach(conn);
  }

  /** Continuations after a promise run outside the server's handlers: a bug there must not escape. */
  private safely(action: () => void): void {
    try {
      action();
    } catch (error) {
      this.fail(error);
    }
  }

  private attach(conn: UpstreamConn): void {
    this.up = conn;
    this.phase = Phase.Exchange;
    this.resBody = null;
    let body: Buffer | null = null;
    if (!this.reqDone && this.buf !== null) {
      const chunk = this.buf;
      this.buf = null;
      body = this.splitBody(chunk);
      if (body === null) return;
    }
    writeUpstreamRequestHead(scratch.reset(), this.head as RequestHead, this.forward as ForwardTo);
    if (body !== null) scratch.bytes(body, 0, body.length); // head and first body bytes in one write
    conn.sendScratch(scratch);
    this.updateReading();
  }

  private forwardBody(data: Buffer): void {
    const body = this.splitBody(data);
    if (body === null) return;
    if (this.up !== null && body.length > 0) this.up.send(body);
    this.progress();
    this.updateReading();
  }

  /** A request body still flowing is progress: the upstream timeout counts silence, not transfer time. */
  private progress(): void {
    if (this.deadlineKind === Deadline.Upstream)
      this.setDeadline(Deadline.Upstream, this.ctx.config.upstreamTimeoutSec);
  }

  /** Takes this request's part of a chunk; bytes past its end are kept for the next request. */
  private splitBody(chunk: Buffer): Buffer | null {
    const body = this.reqBody as BodyFraming;
    let end: number;
    try {
      end = body.end(chunk, 0, 400);
    } catch (error) {
      this.answer((error as HttpParseError).status ?? 400, (error as Error).message, true, this.hash);
      return null;
    }
    const maxBody = this.ctx.config.maxRequestBodyBytes;
    if (maxBody > 0 && body.bytes > maxBody) {
      this.answer(413, `request body larger than ${maxBody} bytes`, true, this.hash);
      return null;
    }
    if (end < chunk.length) {
      this.buf = this.buf === null ? chunk.subarray(end) : Buffer.concat([chunk.subarray(end), this.buf]);
    }
    return end === chunk.length ? chunk : chunk.subarray(0, end);
  }

  private get reqDone(): boolean {
    return this.reqBody === null || this.reqBody.done;
  }

  // ---- response side ----

  onUpstreamData(conn: UpstreamConn, data: Buffer): void {
    if (conn !== this.up) return;
    if (this.phase === Phase.Tunnel) {
      this.sendClient(data);
      return;
    }
    if (this.resBody !== null) {
      this.forwardResponseBody(data);
      return;
    }
    const buf = this.resBuf === null ? data : Buffer.concat([this.resBuf, data]);
    const end = buf.indexOf(CRLFCRLF);
    if (end < 0 || end > MAX_RESPONSE_HEAD) {
      if (end > 0 || buf.length > MAX_RESPONSE_HEAD) {
        this.answer(502, `hash ${this.hash}: response head too large`, true, this.hash);
        return;
      }
      this.resBuf = buf;
      return;
    }
    this.resBuf = null;
    let res: ResponseHead;
    try {
      res = parseResponseHead(buf, end);
    } catch (error) {
      this.answer(502, `hash ${this.hash}: ${(error as Error).message}`, true, this.hash);
      return;
    }
    const bodyStart = end + 4;
    const head = this.head as RequestHead;
    if (res.status < 200 && res.status !== 101) {
      // interim response (100 Continue, 103 Early Hints): pass it on, the final one follows
      if (++this.interim > MAX_INTERIM_RESPONSES) {
        this.answer(
          502,
          `hash ${this.hash}: more than ${MAX_INTERIM_RESPONSES} interim responses`,
          true,
          this.hash,
        );
        return;
      }
      this.sendClient(buf.subarray(0, bodyStart));
      if (bodyStart < buf.length) this.onUpstreamData(conn, buf.subarray(bodyStart));
      return;
    }
    this.deadline = 0;
    this.deadlineKind = Deadline.None;
    if (this.countFrom >= 0 && (res.status !== 101 || head.upgrade !== undefined))
      this.countResponse(res.status);
    if (res.status === 101) {
      if (head.upgrade === undefined) {
        this.answer(502, `hash ${this.hash}: 101 without an upgrade request`, true, this.hash);
        return;
      }
      this.phase = Phase.Tunnel;
      this.resStarted = true;
      this.sendResponseHead(buf, buf.length);
      const early = this.buf; // bytes the client sent before it saw the 101
      this.buf = null;
      if (early !== null) conn.send(early);
      this.updateReading();
      return;
    }
    const body = BodyFraming.forResponse(res, head.method);
    this.resBody = body;
    this.upReusable = !res.close && head.minor === 1;
    if (body.untilClose) {
      this.upReusable = false;
      head.keepAlive = false; // the client can only see the end of this body by the close
    }
    let stop = bodyStart;
    if (bodyStart < buf.length) {
      stop = this.responseEnd(buf, bodyStart);
      if (stop < 0) return;
    }
    this.resStarted = true;
    // RFC 9112 9.6: the client asked to close (or the body ends at the close): say so, as the last
    // response on this connection, unless the service's head already does.
    this.sendResponseHead(buf, stop, !head.keepAlive && !res.close);
    if (body.done) this.finishResponse();
  }

  private forwardResponseBody(data: Buffer): void {
    const stop = this.responseEnd(data, 0);
    if (stop < 0) return;
    if (stop > 0) this.sendClient(stop === data.length ? data : data.subarray(0, stop));
    if (this.resBody?.done) this.finishResponse();
  }

  /** Where this response's bytes in buf[start..] end; -1 after a framing error (the exchange is aborted). */
  private responseEnd(buf: Buffer, start: number): number {
    let stop: number;
    try {
      stop = (this.resBody as BodyFraming).end(buf, start, 502);
    } catch (error) {
      this.ctx.log("warn", "bad chunked response", { hash: this.hash, error: String(error) });
      this.abort();
      return -1;
    }
    if (stop < buf.length) this.upReusable = false; // the service sent more than this response
    return stop;
  }

  onUpstreamDrain(conn: UpstreamConn): void {
    if (conn !== this.up) return;
    this.progress();
    this.updateReading();
  }

  onUpstreamClose(conn: UpstreamConn): void {
    if (conn !== this.up) return;
    this.up = null;
    if (this.phase === Phase.Tunnel) {
      this.close();
      return;
    }
    if (this.resBody?.untilClose) {
      this.resBody.closed();
      this.finishResponse();
      return;
    }
    if (this.resBody !== null) {
      this.abort(); // truncated: the client must see that it is
      return;
    }
    if (this.resBuf === null && this.retryable && conn.uses > 1) {
      // a pooled connection the service had closed: send the request once more on a new one
      this.retryable = false;
      this.phase = Phase.Waiting;
      this.connect();
      return;
    }
    this.answer(
      502,
      `hash ${this.hash}: its service closed the connection without an answer`,
      true,
      this.hash,
    );
  }

  private finishResponse(): void {
    const conn = this.up;
    this.up = null;
    if (conn !== null) {
      if (this.upReusable && this.reqDone) this.ctx.pool.release(conn, this.ctx.now);
      else this.ctx.pool.destroy(conn);
    }
    // the service answered before the whole request body came: where the next request starts is unknown
    if (!this.reqDone) (this.head as RequestHead).keepAlive = false;
    if (this.out.empty) this.completeExchange();
  }

  /** The last byte is on the client's socket: the request leaves the in-flight count. */
  private completeExchange(): void {
    const keepAlive = (this.head as RequestHead).keepAlive;
    this.leave();
    this.resetExchange();
    if (!keepAlive) {
      this.close();
      return;
    }
    this.phase = Phase.Head;
    this.setDeadline(Deadline.Idle, this.ctx.config.idleTimeoutSec);
    if (this.buf !== null) this.readHead();
    this.updateReading();
  }

  private resetExchange(): void {
    this.head = null;
    this.cookieLine = null;
    this.target = null;
    this.forward = null;
    this.reqBody = null;
    this.resBody = null;
    this.resBuf = null;
    this.resStarted = false;
    this.interim = 0;
    this.socketWaitUntil = 0;
  }

  // ---- helpers ----

  /** buf[0, stop): the service's response head (and what follows it) with the x-hashd-hash line added */
  private sendResponseHead(buf: Buffer, stop: number, announceClose = false): void {
    const cookie = this.cookieLine;
    if (this.viaPeer && !announceClose && cookie === null) {
      this.sendClient(stop === buf.length ? buf : buf.subarray(0, stop)); // the peer's ingress added it
      return;
    }
    const hashLine = this.viaPeer ? NO_LINE : this.ctx.hashLine(this.hash); // a peer's ingress added it
    const line =
      cookie === null && !announceClose
        ? hashLine
        : Buffer.concat([hashLine, cookie ?? NO_LINE, announceClose ? CLOSE_LINE : NO_LINE]);
    writeWithLine(scratch.reset(), buf, stop, line);
    if (!this.out.sendCopy(this.socket, scratch.buf, scratch.length)) this.clientBacklogged();
  }

  private sendClient(data: Uint8Array): void {
    if (!this.out.send(this.socket, data)) this.clientBacklogged();
  }

  /** The client has not taken everything: pause what feeds it, and cut it if it stays stalled. */
  private clientBacklogged(): void {
    if (this.deadlineKind === Deadline.None)
      this.setDeadline(Deadline.Stalled, this.ctx.config.idleTimeoutSec);
    this.updateReading();
  }

  /**
   * Reads from each side only while the other side is taking what it sends. Bytes of a pipelined
   * request are held up to PIPELINE_BUFFER before the client is paused: pausing is a system call,
   * and doing it on every request costs more than the few bytes it would save.
   */
  private updateReading(): void {
    const up = this.up;
    let clientWants: boolean;
    switch (this.phase) {
      case Phase.Head:
        clientWants = !this.closeWhenFlushed;
        break;
      case Phase.Waiting:
        clientWants = (this.buf?.length ?? 0) < PIPELINE_BUFFER;
        break;
      case Phase.Exchange:
        clientWants = this.reqDone
          ? (this.buf?.length ?? 0) < PIPELINE_BUFFER
          : up?.out.empty === true && this.buf === null;
        break;
      case Phase.Tunnel:
        clientWants = up?.out.empty === true;
        break;
      default:
        return;
    }
    if (clientWants === this.clientPaused) {
      this.clientPaused = !clientWants;
      if (clientWants) this.socket.resume();
      else this.socket.pause();
    }
    up?.setReading(this.out.empty);
  }

  /** An answer written by the ingress itself. Once the service's response has started, it can only abort. */
  private answer(
    status: number,
    message: string,
    close: boolean,
    hash?: string,
    extras?: AnswerExtras,
  ): void {
    if (this.phase === Phase.Closed) return;
    if (this.countFrom >= 0) this.countAnswer(status);
    if (this.resStarted) {
      this.abort();
      return;
    }
    if (this.up !== null) this.ctx.pool.destroy(this.up);
    this.up = null;
    this.ctx.stats.countAnswer(status);
    this.leave();
    this.out.send(this.socket, plainResponse(status, message, { close, hash, ...extras }));
    if (close) {
      this.phase = Phase.Closed;
      this.buf = null;
      this.resetExchange();
      this.close();
      return;
    }
    this.resetExchange();
    this.phase = Phase.Head;
    this.setDeadline(Deadline.Idle, this.ctx.config.idleTimeoutSec);
    if (this.buf !== null) this.readHead();
    this.updateReading();
  }

  private leave(): void {
    if (this.entry !== null) this.ctx.inflight.leave(this.entry);
    this.entry = null;
  }

  // ---- request counting (request-stats.ts): only while ctx.requestStats is set ----

  /**
   * A request was routed: its latency runs from now. A request a peer forwarded here is not counted:
   * the member it came to first counts it (with the status this member's answer carries), so sums
   * over members count each request once.
   */
  /**
   * Counts a request where it is served: a local route, also one a peer forwarded (its Host, the
   * client's, names the alias it came through). One forwarded to a peer is counted there, not here:
   * only the member that runs a hash has a report row to publish its counts in, and a request is
   * counted once across the cluster.
   */
  private countStart(served: boolean, alias: string | null): void {
    if (!served) {
      this.countFrom = -1;
      return;
    }
    this.countFrom = performance.now();
    this.countAlias = alias;
  }

  /** The alias a forwarded request came through: its Host's label, when that is an alias name. */
  private hopAlias(head: RequestHead): string | null {
    const host = parseHost(head.host, this.ctx.config.zone);
    return host.kind === "label" && isAliasName(host.label) ? host.label : null;
  }

  /** The service's final response head arrived (or its 101): its status and latency. */
  private countResponse(status: number): void {
    const latencyMs = performance.now() - this.countFrom;
    this.countFrom = -1;
    this.ctx.requestStats?.record(this.hash, this.countAlias, status, latencyMs);
  }

  /**
   * The ingress answers a counted request itself before the service's head: a 502, 503 or 504 is an
   * upstream failure (refused, reset, timed out, malformed); anything else (a request body the
   * client got wrong: 400, 413) is the client's, and not counted.
   */
  private countAnswer(status: number): void {
    this.countFrom = -1;
    if (status === 502 || status === 503 || status === 504)
      this.ctx.requestStats?.record(this.hash, this.countAlias, "failure", 0);
  }

  /** Closes after what is queued for the client has been written. */
  private close(): void {
    this.leave();
    this.phase = Phase.Closed;
    this.updateReading();
    if (this.out.empty) {
      this.deadline = 0;
      this.socket.end();
    } else {
      this.closeWhenFlushed = true;
      this.setDeadline(Deadline.Stalled, this.ctx.config.idleTimeoutSec);
    }
  }

  /** Cuts the connection (a truncated response must not look complete to the client). */
  private abort(): void {
    if (this.up !== null) this.ctx.pool.destroy(this.up);
    this.up = null;
    this.leave();
    this.phase = Phase.Closed;
    this.out.clear();
    this.socket.terminate();
  }

  private setDeadline(kind: Deadline, seconds: number): void {
    this.deadlineKind = kind;
    // ctx.now lags by up to one sweep: add it, so a timeout is never early (and at most two sweeps late)
    this.deadline = this.ctx.now + seconds * 1000 + SWEEP_MS;
  }
}

/** The host name of a Host value, without its port ("[::1]:8080" -> "[::1]"). */
function hostName(host: string): string {
  if (host.startsWith("[")) {
    const end = host.indexOf("]");
    return end < 0 ? host : host.slice(0, end + 1);
  }
  const colon = host.indexOf(":");
  return colon < 0 ? host : host.slice(0, colon);
}

/** A LF not preceded by CR in buf[from..]. */
function hasBareLf(buf: Buffer, from: number): boolean {
  for (let i = buf.indexOf(10, from); i >= 0; i = buf.indexOf(10, i + 1))
    if (i === 0 || buf[i - 1] !== 13) return true;
  return false;
}
