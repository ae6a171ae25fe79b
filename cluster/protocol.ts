/**
 * Messages between the cluster primary and its workers (over the cluster IPC channel, beside
 * @socket.io/sticky's own `sticky:*` messages).
 */

/** Worker -> primary: the server is up (store and adapter connected); it may receive connections. */
export interface ReadyMessage {
  type: "codespace:ready";
}

/** Worker -> primary: graceful shutdown began; send it no new sessions (existing ones still route to it). */
export interface DrainingMessage {
  type: "codespace:draining";
}

/**
 * Worker -> primary: the last message before the worker exits. Its send callback says that every
 * earlier IPC message (responses @socket.io/sticky relays for the primary's sockets) was written.
 */
export interface StoppedMessage {
  type: "codespace:stopped";
}

export type WorkerMessage = ReadyMessage | DrainingMessage | StoppedMessage;

/**
 * Worker -> primary, during a handshake, before its response (sticky-adapter.ts): the worker is
 * creating session `sid`; the primary holds requests naming it until sticky has bound it.
 */
export interface SessionMessage {
  type: "codespace:session";
  sid: string;
}

export function isSessionMessage(m: unknown): m is SessionMessage {
  const msg = m as { type?: unknown; sid?: unknown } | null;
  return msg?.type === "codespace:session" && typeof msg.sid === "string";
}

/** Primary -> worker, answering "codespace:stopped": no connection will be sent to it any more. */
export interface UnroutedMessage {
  type: "codespace:unrouted";
}

/** Primary -> worker, answering "codespace:session": the primary knows `sid`; the handshake may be answered. */
export interface SessionKnownMessage {
  type: "codespace:session-known";
  sid: string;
}

export type PrimaryMessage = UnroutedMessage | SessionKnownMessage;

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  const type = (m as { type?: unknown } | null)?.type;
  return type === "codespace:ready" || type === "codespace:draining" || type === "codespace:stopped";
}
