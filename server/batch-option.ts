/**
 * Handshake middleware: the client's choice of batched broadcasts, `auth.batches`
 * (docs/protocol.md, "Batched broadcasts"). `true`: the socket receives one `insert_value` per
 * commit; absent, `null` or `false`: one per accepted update, as before the option existed.
 * Anything else is refused with `invalid_payload` (connect_error `data.code`).
 */
import type { Socket } from "socket.io";
import { InvalidPayloadError } from "./errors.js";

/** Whether the handshake asks for batches. @throws InvalidPayloadError when `auth.batches` is not a boolean */
export function checkBatchOption(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new InvalidPayloadError("auth.batches must be true or false");
  return v;
}

/** True when the (checked) handshake of `socket` asked for batches. */
export function wantsBatches(socket: Socket): boolean {
  return (socket.handshake.auth as { batches?: unknown } | undefined)?.batches === true;
}

export function batchOptionMiddleware() {
  return (socket: Socket, next: (err?: Error) => void): void => {
    try {
      checkBatchOption((socket.handshake.auth as { batches?: unknown } | undefined)?.batches);
      next();
    } catch (err) {
      const e = err as InvalidPayloadError;
      next(Object.assign(new Error(e.message), { data: e.toWire() }));
    }
  };
}
