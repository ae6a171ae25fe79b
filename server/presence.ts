/**
 * Presence: who is in a codespace, across every instance (docs/protocol.md, "Presence").
 *
 * - The list sent in `connected.users` comes from `fetchSockets()` on the codespace's room, which the
 *   Redis adapter answers from every instance (the in-memory adapter: this process only).
 * - `user_joined` / `user_left` are room broadcasts (through the adapter) to the others.
 *
 * A socket is identified by its socket id, which is never reused, so a client can apply the list and
 * the events in any order (a `user_left` wins over everything else for that id).
 */
import type { Logger } from "./logger.js";
import type { SocketAuth } from "./hooks.js";
import type { UserInfo } from "./protocol/events.js";
import type { CodespaceNamespace, CodespaceSocket } from "./namespace/types.js";

/** How long the cross-instance list may take before falling back to this instance's sockets, ms. */
const LIST_TIMEOUT_MS = 2000;

/** The presence entry of a socket. */
export function userOf(id: string, data: Partial<SocketAuth>): UserInfo {
  const user: UserInfo = { id, mode: data.mode ?? "view_only" };
  if (data.name) user.name = data.name;
  return user;
}

export class Presence {
  constructor(
    private readonly nsp: CodespaceNamespace,
    private readonly logger: Logger,
  ) {}

  /** Tells the others in `room` that `socket` joined (call after `socket.join(room)`). */
  joined(socket: CodespaceSocket, room: string): void {
    socket.to(room).emit("user_joined", userOf(socket.id, socket.data));
  }

  /** Tells everyone left in `room` that the socket `id` is gone (call on `disconnect`). */
  left(id: string, room: string): void {
    this.nsp.to(room).emit("user_left", { id });
  }

  /**
   * Everyone in `room` on every instance. Falls back to this instance's sockets (and logs) when the
   * other instances do not answer within LIST_TIMEOUT_MS or the adapter fails.
   */
  async list(room: string): Promise<UserInfo[]> {
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${LIST_TIMEOUT_MS} ms`)), LIST_TIMEOUT_MS);
      });
      try {
        const sockets = await Promise.race([this.nsp.in(room).fetchSockets(), timeout]);
        return sockets.map((s) => userOf(s.id, s.data));
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      this.logger.warn({ err: (err as Error).message, room }, "presence: cross-instance list failed; local sockets only");
      const sockets = await this.nsp.local.in(room).fetchSockets();
      return sockets.map((s) => userOf(s.id, s.data));
    }
  }
}
