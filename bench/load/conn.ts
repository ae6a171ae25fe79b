/** What the load generator needs from a client connection, whatever the protocol. */
export interface Conn {
  /** Sends one edit; `ack` gets the server's answer (raw ws relay: never). */
  sendEdit(clientID: string, seq: number, ack: (res: { ok: boolean; error?: { code: string } }) => void): void;
  close(): void;
}

export interface ConnHandlers {
  /** A broadcast update arrived. */
  onUpdate(clientID: string, version: number): void;
}

export const CONNECT_TIMEOUT_MS = 30_000;
