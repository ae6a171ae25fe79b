/**
 * Handshake middleware, after the token check: a display name the user chose, `auth.name`
 * (docs/protocol.md, "Presence"). Trimmed; 1 to MAX_NAME_LENGTH UTF-16 code units without control
 * characters; anything else is refused with `invalid_payload` (the demo page never sends such a
 * name). A name returned by the site API wins: it is the site's account name. Absent or empty:
 * no name (clients show "guest xxxx").
 */
import type { Socket } from "socket.io";
import type { SocketAuth } from "./hooks.js";
import { InvalidPayloadError } from "./errors.js";

/** Longest display name accepted in `auth.name`, UTF-16 code units. */
export const MAX_NAME_LENGTH = 40;

/** The checked name, "" for none. @throws InvalidPayloadError */
export function checkDisplayName(v: unknown): string {
  if (v === undefined || v === null) return "";
  if (typeof v !== "string") throw new InvalidPayloadError("auth.name must be a string");
  const name = v.trim();
  // eslint-disable-next-line no-control-regex
  if (name.length > MAX_NAME_LENGTH || /[\u0000-\u001f\u007f]/.test(name) || !name.isWellFormed()) {
    throw new InvalidPayloadError(`auth.name must be at most ${MAX_NAME_LENGTH} characters, without control characters`);
  }
  return name;
}

export function displayNameMiddleware() {
  return (socket: Socket, next: (err?: Error) => void): void => {
    const data = socket.data as Partial<SocketAuth>;
    try {
      const name = checkDisplayName((socket.handshake.auth as { name?: unknown } | undefined)?.name);
      if (name && !data.name) data.name = name;
      next();
    } catch (err) {
      const e = err as InvalidPayloadError;
      next(Object.assign(new Error(e.message), { data: e.toWire() }));
    }
  };
}
