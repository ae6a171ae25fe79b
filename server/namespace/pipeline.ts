/**
 * The per-event pipeline of the `/codespace` namespace: every client event is DECLARED as
 *
 *   guards (shutdown, rate limit, edit mode; in order) -> validate -> handle -> observers
 *
 * and `eventAttacher` runs it for each socket: the ack gets `{ ok: true, ...result }` or
 * `{ ok: false, error }` (`operation_error` `{ event, error }` when the client sent no callback);
 * whatever a stage throws becomes a CodespaceError (errors.ts) and nothing after it runs.
 * Observers see every outcome (logs, metrics) and never change it.
 */
import type { Codespace } from "../codespace.js";
import { toCodespaceError, type CodespaceError } from "../errors.js";
import type { ClientToServerEvents } from "../protocol/events.js";
import type { CodespaceSocket } from "./types.js";

/** What a stage knows about the socket's connection. */
export interface EventContext {
  socket: CodespaceSocket;
  /** The socket's codespace (its accept path). */
  codespace: Codespace;
  /** The codespace's room. */
  room: string;
}

export type ClientEvent = keyof ClientToServerEvents;

/** A check before the payload is read; throws a CodespaceError to refuse. */
export type Guard = (ctx: EventContext, event: ClientEvent) => void | Promise<void>;

/** The outcome of one event, for observers. */
export interface Outcome {
  event: ClientEvent;
  ctx: EventContext;
  /** Time from arrival to the answer, milliseconds. */
  elapsedMs: number;
  /** Absent: accepted. */
  error?: CodespaceError;
  /** What was thrown, when it was not a CodespaceError (internal_error). */
  cause?: unknown;
}

export type Observer = (outcome: Outcome) => void;

/** One client event's declared pipeline. */
export interface EventPipeline<P = unknown> {
  event: ClientEvent;
  guards: readonly Guard[];
  /** Shape and limit checks (protocol/validate.ts); throws `invalid_payload`. */
  validate(payload: unknown): P;
  /** Acts; resolves with the ack's fields beside `ok: true`. */
  handle(payload: P, ctx: EventContext): object | Promise<object>;
  observers: readonly Observer[];
}

/** The context of a socket's event, resolved when the event arrives (namespace/index.ts). */
export type ContextOf = (socket: CodespaceSocket) => EventContext;

/**
 * Returns `attach(socket, pipeline)`, which runs `pipeline` for every `pipeline.event` the socket
 * sends. The listener is one function per pipeline, shared by every socket (Socket.IO calls it with
 * the socket as `this`), and the context is resolved by `contextOf` when an event arrives: an idle
 * connection holds neither a closure nor a context object.
 */
export function eventAttacher(contextOf: ContextOf): <P>(socket: CodespaceSocket, pipeline: EventPipeline<P>) => void {
  const listeners = new Map<object, Listener>();
  return <P>(socket: CodespaceSocket, pipeline: EventPipeline<P>): void => {
    let listener = listeners.get(pipeline);
    if (!listener) {
      listener = listenerOf(pipeline as unknown as EventPipeline, contextOf);
      listeners.set(pipeline, listener);
    }
    socket.on(pipeline.event, listener);
  };
}

type Listener = (this: CodespaceSocket, ...args: unknown[]) => Promise<void>;

function listenerOf(pipeline: EventPipeline, contextOf: ContextOf): Listener {
  return async function (this: CodespaceSocket, ...args: unknown[]): Promise<void> {
    const socket = this;
    const ctx = contextOf(socket);
    const ack = typeof args[args.length - 1] === "function" ? (args.pop() as (res: object) => void) : undefined;
    const started = performance.now();
    let result: object | undefined;
    let error: CodespaceError | undefined;
    let cause: unknown;
    try {
      for (const guard of pipeline.guards) await guard(ctx, pipeline.event);
      result = await pipeline.handle(pipeline.validate(args[0]), ctx);
    } catch (err) {
      error = toCodespaceError(err);
      if (error.code === "internal_error") cause = err;
    }
    const outcome: Outcome = { event: pipeline.event, ctx, elapsedMs: performance.now() - started, error, cause };
    for (const observe of pipeline.observers) {
      try {
        observe(outcome);
      } catch {
        // an observer (log, metric) never changes the answer
      }
    }
    if (!error) ack?.({ ok: true, ...result });
    else if (ack) ack({ ok: false, error: error.toWire() });
    else socket.emit("operation_error", { event: pipeline.event, error: error.toWire() });
  };
}
