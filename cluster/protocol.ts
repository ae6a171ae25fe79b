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

export type WorkerMessage = ReadyMessage | DrainingMessage;

export function isWorkerMessage(m: unknown): m is WorkerMessage {
  const type = (m as { type?: unknown } | null)?.type;
  return type === "codespace:ready" || type === "codespace:draining";
}
