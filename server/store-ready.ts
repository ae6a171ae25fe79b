/**
 * Handshake middleware, first in the chain: while the code store (Redis) is down, a handshake is
 * refused at once with `store_unavailable` in `connect_error.data` instead of hanging until the
 * client's timeout (the socket could not be given its codespace anyway).
 */
import type { Socket } from "socket.io";
import { StoreUnavailableError } from "./errors.js";

export function storeReadyMiddleware(isStoreReady: () => boolean) {
  return (_socket: Socket, next: (err?: Error) => void): void => {
    if (isStoreReady()) return next();
    const e = new StoreUnavailableError("the code store (Redis) is unavailable; try again shortly");
    next(Object.assign(new Error(e.message), { data: e.toWire() }));
  };
}
