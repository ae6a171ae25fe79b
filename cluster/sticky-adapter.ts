/**
 * The one place that knows more of @socket.io/sticky (2.x) than its public API (`setupPrimary`,
 * `setupWorker`). test/sticky-adapter.test.ts fails if the library changes what is relied on here.
 *
 * Why more is needed, and what:
 * 1. **A session must be known to the primary before its client can use it.** sticky's primary
 *    learns which worker holds a session from the worker's `sticky:connection` IPC message, sent
 *    when engine.io emits `connection`, i.e. after the handshake response went out on the TCP
 *    socket. On a busy machine the client's next request (the polling POST that carries the
 *    namespace CONNECT, or the WebSocket upgrade) can reach the primary before that IPC message:
 *    sticky then balances it as a new connection, to the wrong worker half the time, which answers
 *    400 "Session ID unknown" (issue 12, point 7). Fixed in two steps, both bounded:
 *    - worker: engine.io's public `generateId` hook (awaited before the handshake response) tells
 *      the primary the new session id and waits for its answer (`codespace:session`);
 *    - primary: a gate in front of sticky reads the `sid` of each connection's first request and
 *      holds a request whose session is announced but not yet bound in sticky (its
 *      `sticky:connection` not yet processed), then hands it to sticky unchanged.
 * 2. **Which worker gets new sessions.** sticky's least-connection balancer picks the worker with
 *    the smallest `worker.clientsCount` (a property it keeps on node's Worker objects), counted from
 *    bindings that arrive after the handshakes: a burst of new connections all went to one worker.
 *    A worker starting (its sticky handler not yet installed: a connection handed over would hang)
 *    or draining (after SIGTERM) must get none. The adapter owns that property (sticky's own writes
 *    are ignored): it picks the least loaded routable worker itself (its sessions plus the new
 *    connections handed to it and not yet announced), and hands the request's first chunk to sticky
 *    synchronously while `clientsCount` reads 0 for that worker and Infinity for the others, so
 *    sticky's choice (made synchronously on that chunk) is the adapter's.
 * 3. **A stopped worker gets nothing more.** Once a worker has closed its server
 *    (`codespace:stopped`), requests of its old sessions are answered here with engine.io's 400
 *    "Session ID unknown" (the client reconnects to another worker) instead of being handed to a
 *    process about to exit (a connection handed over but never taken would hang).
 */
import cluster, { type Worker } from "node:cluster";
import { createServer as createHttpServer } from "node:http";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";
import sticky from "@socket.io/sticky";
import type { Server as IoServer } from "socket.io";
import { isSessionMessage, type PrimaryMessage, type SessionMessage } from "./protocol.js";

/** sticky's IPC message types this adapter reads (worker -> primary). */
const STICKY_BOUND = "sticky:connection";
const STICKY_UNBOUND = "sticky:disconnection";

/** Longest a request waits for its announced session to be bound (then it is handed over anyway). */
const HOLD_MS = 5000;
/** Longest a worker's handshake waits for the primary's answer to its announcement. */
const ANNOUNCE_TIMEOUT_MS = 2000;
/** An announced session never bound (its handshake failed) is forgotten after this long. */
const PENDING_TTL_MS = 30_000;
/** A new connection handed to a worker counts toward its load until announced, at most this long. */
const DISPATCH_TTL_MS = 10_000;

/** engine.io's session ids: 20 characters of `[A-Za-z0-9_-]` (sticky matches the same). */
const SID = /[?&]sid=([\w-]{20})/;

/** The request line of a request's first chunk. */
function requestLine(chunk: Buffer): string {
  const end = chunk.indexOf("\r\n");
  return chunk.subarray(0, end < 0 ? chunk.length : end).toString("latin1");
}

/** The session id named by the request line of a request's first chunk, if any. */
export function sidOf(chunk: Buffer): string | undefined {
  return SID.exec(requestLine(chunk))?.[1];
}

/** True for an engine.io request without a session: a handshake (not /healthz, the page, ...). */
function isHandshake(chunk: Buffer): boolean {
  const line = requestLine(chunk);
  return /[?&]EIO=/.test(line) && !SID.test(line);
}

/** What engine.io answers for a session it does not hold (the client then reconnects). */
const UNKNOWN_SESSION_BODY = JSON.stringify({ code: 1, message: "Session ID unknown" });
const UNKNOWN_SESSION_RESPONSE =
  "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nConnection: close\r\n" +
  `Content-Length: ${Buffer.byteLength(UNKNOWN_SESSION_BODY)}\r\n\r\n${UNKNOWN_SESSION_BODY}`;

interface WorkerState {
  id: number;
  /** Sessions announced (and not ended) on the worker. */
  sessions: number;
  /** When each new connection handed to it and not yet announced was handed over. */
  dispatched: number[];
  routable: boolean;
  stopped: boolean;
}

/** A worker's load: its sessions plus the new connections on their way. */
function loadOf(s: WorkerState, now: number): number {
  while (s.dispatched.length > 0 && now - s.dispatched[0]! > DISPATCH_TTL_MS) s.dispatched.shift();
  return s.sessions + s.dispatched.length;
}

export interface StickyPrimary {
  /**
   * Binds port/host; rejects with the listen error (EADDRINUSE, ...). Until `open()` the primary
   * answers each connection's first request itself (`answerUnready`: /healthz 200, else 503).
   */
  listen(port: number, host: string): Promise<AddressInfo>;
  /** Starts handing connections over (call once workers are ready). */
  open(): void;
  /** Stops listening. */
  close(): void;
  /** Registers a forked worker: not routable until `setRoutable(worker, true)`. */
  add(worker: Worker): void;
  /** Lets the least-connection balancer give `worker` new sessions, or not (starting, draining). */
  setRoutable(worker: Worker, routable: boolean): void;
  /** The worker closed its server: nothing more is handed to it (see 3 above). */
  stop(worker: Worker): void;
  /** Requests held so far, waiting for their session to be bound (diagnostics, tests). */
  readonly heldTotal: number;
  /** Of those, the ones handed over after HOLD_MS without the binding (logged). */
  readonly heldInVain: number;
}

export interface StickyPrimaryOptions {
  /** Gets one warn line per request that waited HOLD_MS for its session's binding in vain. */
  logger?: { warn(obj: object, msg: string): void };
}

/**
 * Before the first workers are ready (each waits for Redis) nothing can be handed over: the primary
 * answers the connection's first request itself, as a worker without Redis would, so that probes and
 * clients get an answer at once instead of a hanging connection: `GET /healthz` 200, anything else
 * 503 (`/readyz`'s body names why; a Socket.IO client takes it as a transport error and retries).
 */
function answerUnready(socket: Socket): void {
  socket.on("error", () => socket.destroy());
  socket.once("data", (chunk: Buffer) => {
    const requestLine = chunk.toString("latin1", 0, Math.min(chunk.length, 512)).split("\r\n", 1)[0] ?? "";
    const [method, target = ""] = requestLine.split(" ");
    const path = target.split("?")[0];
    const alive = method === "GET" && path === "/healthz";
    const body = JSON.stringify(alive ? { status: "ok" } : { status: "unavailable", problems: ["no worker is ready yet (each waits for Redis)"] });
    socket.end(
      `HTTP/1.1 ${alive ? "200 OK" : "503 Service Unavailable"}\r\ncontent-type: application/json\r\n` +
        `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
    );
  });
  socket.resume();
}

/** Primary side: sticky's `setupMaster` behind the session gate, and the routing of new sessions. */
export function setupStickyPrimary(options: StickyPrimaryOptions = {}): StickyPrimary {
  const workers = new Map<number, WorkerState>();
  /** Session id -> worker id, from sticky's own binding messages. */
  const bound = new Map<string, number>();
  /** Announced, not yet bound: session id -> requests waiting for the binding. */
  const pending = new Map<string, { worker: number; waiters: (() => void)[]; timer: NodeJS.Timeout }>();
  let heldTotal = 0;
  let heldInVain = 0;

  const stickyServer = createHttpServer(); // never listens: sticky only takes its "connection" events
  sticky.setupMaster(stickyServer, { loadBalancingMethod: "least-connection" });

  /** The worker sticky must pick while a request's first chunk is handed over (see 2 above). */
  let steer: number | undefined;

  const leastLoaded = (): WorkerState | undefined => {
    const now = Date.now();
    let best: WorkerState | undefined;
    for (const s of workers.values()) {
      if (s.routable && (!best || loadOf(s, now) < loadOf(best, now))) best = s;
    }
    return best;
  };

  const release = (sid: string, bindingArrived = true): void => {
    const p = pending.get(sid);
    if (!p) return;
    pending.delete(sid);
    clearTimeout(p.timer);
    const state = workers.get(p.worker);
    if (!bindingArrived && state) state.sessions--; // its handshake failed: no session
    // after every "message" listener ran (sticky's included: its map now holds the session)
    setImmediate(() => p.waiters.forEach((w) => w()));
  };

  // Registered after sticky's own listener (setupPrimary above).
  cluster.on("message", (worker: Worker, message: unknown) => {
    if (isSessionMessage(message)) {
      const timer = setTimeout(() => release(message.sid, false), PENDING_TTL_MS);
      timer.unref();
      pending.set(message.sid, { worker: worker.id, waiters: [], timer });
      const state = workers.get(worker.id);
      if (state) {
        state.sessions++;
        state.dispatched.shift();
      }
      if (worker.isConnected()) worker.send({ type: "codespace:session-known", sid: message.sid } satisfies PrimaryMessage, undefined, () => {});
      return;
    }
    const m = message as { type?: unknown; data?: unknown } | null;
    if (typeof m?.data !== "string") return;
    const state = workers.get(worker.id);
    if (m.type === STICKY_BOUND) {
      bound.set(m.data, worker.id);
      release(m.data);
    } else if (m.type === STICKY_UNBOUND) {
      if (bound.delete(m.data) && state) state.sessions--;
    }
  });

  cluster.on("exit", (worker: Worker) => {
    workers.delete(worker.id);
    for (const [sid, id] of bound) if (id === worker.id) bound.delete(sid);
    for (const [sid, p] of pending) if (p.worker === worker.id) release(sid, false);
  });

  /** Gives the connection to sticky; `sid`: the session its first request names, if any. */
  const handOver = (socket: Socket, chunk: Buffer, sid: string | undefined): void => {
    if (socket.destroyed) return;
    stickyServer.emit("connection", socket); // sticky replaces the "data" listeners with its own
    // A request sticky will balance (no session, or one it does not know): choose for it.
    const target = sid === undefined || !bound.has(sid) ? leastLoaded() : undefined;
    if (target && isHandshake(chunk)) target.dispatched.push(Date.now());
    steer = target?.id;
    try {
      socket.emit("data", chunk); // sticky picks the worker synchronously, reading clientsCount
    } finally {
      steer = undefined;
    }
    socket.resume(); // the rest of the request, if any, follows the first chunk
  };

  const gate = (socket: Socket): void => {
    socket.on("error", () => socket.destroy());
    socket.once("data", (chunk: Buffer) => {
      socket.pause();
      const sid = sidOf(chunk);
      const owner = sid === undefined ? undefined : (bound.get(sid) ?? pending.get(sid)?.worker);
      if (owner !== undefined && workers.get(owner)?.stopped) {
        socket.end(UNKNOWN_SESSION_RESPONSE);
        return;
      }
      const p = sid === undefined ? undefined : pending.get(sid);
      if (!p) return handOver(socket, chunk, sid);
      heldTotal++;
      let done = false;
      const go = (): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        handOver(socket, chunk, sid);
      };
      const timer = setTimeout(() => {
        heldInVain++;
        options.logger?.warn({ sid, workerId: p.worker, heldMs: HOLD_MS }, "request's session still not bound; handing it over anyway");
        go();
      }, HOLD_MS);
      p.waiters.push(go);
    });
    socket.resume();
  };

  let opened = false;
  const front: NetServer = createNetServer({ pauseOnConnect: true }, (socket) => {
    if (opened) return gate(socket);
    answerUnready(socket);
  });

  return {
    listen: (port, host) =>
      new Promise((resolve, reject) => {
        front.once("error", reject);
        front.listen(port, host, () => {
          front.off("error", reject);
          resolve(front.address() as AddressInfo);
        });
      }),
    open() {
      opened = true;
    },
    close: () => {
      front.close();
    },
    add(worker) {
      workers.set(worker.id, { id: worker.id, sessions: 0, dispatched: [], routable: false, stopped: false });
      Object.defineProperty(worker, "clientsCount", {
        configurable: true,
        get: () => {
          if (steer !== undefined) return steer === worker.id ? 0 : Number.POSITIVE_INFINITY;
          const s = workers.get(worker.id);
          return s?.routable ? loadOf(s, Date.now()) : Number.POSITIVE_INFINITY;
        },
        set: () => {}, // sticky's own count: replaced by the one above
      });
    },
    setRoutable(worker, routable) {
      const s = workers.get(worker.id);
      if (s) s.routable = routable && !s.stopped;
    },
    stop(worker) {
      const s = workers.get(worker.id);
      if (s) Object.assign(s, { stopped: true, routable: false });
    },
    get heldTotal() {
      return heldTotal;
    },
    get heldInVain() {
      return heldInVain;
    },
  };
}

/**
 * Worker side: sticky's `setupWorker(io)`, and every new session announced to the primary before
 * its handshake is answered (see 1 above). Bounded: without an answer within
 * ANNOUNCE_TIMEOUT_MS the handshake proceeds.
 */
export function setupStickyWorker(io: IoServer): void {
  sticky.setupWorker(io);
  const waiting = new Map<string, () => void>();
  process.on("message", (m: unknown) => {
    const msg = m as PrimaryMessage | null;
    if (msg?.type === "codespace:session-known") waiting.get(msg.sid)?.();
  });
  const generate = io.engine.generateId.bind(io.engine);
  io.engine.generateId = async (req) => {
    const sid = await generate(req);
    if (!process.connected || !process.send) return sid;
    await new Promise<void>((resolve) => {
      const done = (): void => {
        clearTimeout(timer);
        waiting.delete(sid);
        resolve();
      };
      const timer = setTimeout(done, ANNOUNCE_TIMEOUT_MS);
      waiting.set(sid, done);
      process.send!({ type: "codespace:session", sid } satisfies SessionMessage, undefined, {}, (err) => err && done());
    });
    return sid;
  };
}
