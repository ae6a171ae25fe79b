/**
 * Namespace middleware (after authentication): a non-`tmp-` codespace absent from the store is
 * loaded from the site before the socket is admitted (loader.ts). When the site cannot answer the
 * handshake is refused with `codespace_unavailable` (`store_unavailable` when Redis is down) and
 * nothing is created.
 */
import type { Socket } from "socket.io";
import { isTemporary } from "../codespace-registry.js";
import { toCodespaceError } from "../errors.js";
import type { SocketAuth } from "../hooks.js";
import type { Logger } from "../logger.js";
import type { Loader } from "./loader.js";

export function loadMiddleware(loader: Loader, ttlSeconds: number, logger: Logger) {
  return (socket: Socket, next: (err?: Error) => void): void => {
    const { codespace } = socket.data as SocketAuth;
    if (isTemporary(codespace)) return next();
    loader.open(codespace, ttlSeconds).then(
      () => next(),
      (err: unknown) => {
        const e = toCodespaceError(err);
        logger.info({ socket: socket.id, codespace, code: e.code }, "handshake refused");
        const out = new Error(e.message) as Error & { data: unknown };
        out.data = e.toWire();
        next(out);
      },
    );
  };
}
