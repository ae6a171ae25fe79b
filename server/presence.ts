/**
 * Presence: who is in a codespace, across every instance (docs/protocol.md, "Presence").
 *
 * - The list sent in `connected.users` is this instance's sockets of the codespace's room plus, with
 *   the Redis adapter, each other instance's answer to the server-side event PRESENCE_LIST_EVENT
 *   (without it: this process only).
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
/** At most one warn line per this many ms about failed cross-instance lists. */
const LIST_WARN_EVERY_MS = 10_000;

/** The presence entry of a socket. */
export function userOf(id: string, data: Partial<SocketAuth>): UserInfo {
  const user: UserInfo = { id, mode: data.mode ?? "view_only" };
  if (data.name) user.name = data.name;
  return user;
}

/** Server-to-server event: "your sockets in this room", answered by every other process. */
export const PRESENCE_LIST_EVENT = "presence_list";

export class Presence {
  private lastWarnAt = -Infinity;
  private failedSinceWarn = 0;

  constructor(
    private readonly nsp: CodespaceNamespace,
    private readonly logger: Logger,
    /** True when other processes may hold sockets of the room (the Redis adapter). */
    private readonly crossProcess: boolean,
  ) {
    if (crossProcess) nsp.on(PRESENCE_LIST_EVENT, (room, ack) => ack(this.local(room)));
  }

  /** Tells the others in `room` that `socket` joined (call after `socket.join(room)`). */
  joined(socket: CodespaceSocket, room: string): void {
    socket.to(room).emit("user_joined", userOf(socket.id, socket.data));
  }

  /** Tells everyone left in `room` that the socket `id` is gone (call on `disconnect`). */
  left(id: string, room: string): void {
    this.nsp.to(room).emit("user_left", { id });
  }

  /**
   * This process's sockets in `room`, from the adapter's local room membership (not
   * `local.fetchSockets()`: the cluster adapter's asks Redis for the server count even then, and
   * fails while a master is down).
   */
  private local(room: string): UserInfo[] {
    const users: UserInfo[] = [];
    for (const id of this.nsp.adapter.rooms.get(room) ?? []) {
      const socket = this.nsp.sockets.get(id);
      if (socket) users.push(userOf(id, socket.data));
    }
    return users;
  }

  /**
   * Each other process's sockets in `room` (one array per process). The adapter's `serverSideEmit`
   * is called directly rather than `Namespace.serverSideEmitWithAck` because the cluster adapter's
   * is async and rejects when it cannot count the processes (a master down): that rejection is
   * handled here instead of becoming an unhandled one.
   */
  private askOthers(room: string): Promise<UserInfo[][]> {
    return new Promise((resolve, reject) => {
      const ack = (err: Error | null, responses: UserInfo[][]): void => (err ? reject(err) : resolve(responses));
      Promise.resolve(this.nsp.adapter.serverSideEmit([PRESENCE_LIST_EVENT, room, ack]) as unknown).catch(reject);
    });
  }

  /**
   * Everyone in `room` on every instance: this process's sockets, and each other process's answer
   * to PRESENCE_LIST_EVENT (a server-side emit through the adapter). Not `fetchSockets()` across
   * processes: that encodes every socket's whole handshake (headers included) and decodes it in the
   * asking process, on every join, where the list needs only ids, modes and names. Falls back to this
   * instance's sockets (and logs) when the other instances do not answer within LIST_TIMEOUT_MS or
   * the adapter fails.
   */
  async list(room: string): Promise<UserInfo[]> {
    const local = this.local(room);
    if (!this.crossProcess) return local;
    try {
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error(`no answer within ${LIST_TIMEOUT_MS} ms`)), LIST_TIMEOUT_MS);
      });
      try {
        const remote = await Promise.race([this.askOthers(room), timeout]);
        return local.concat(...remote);
      } finally {
        clearTimeout(timer);
      }
    } catch (err) {
      // one line per outage, not one per join: the first failure, then at most one every 10 s with
      // the count of the joins in between
      const now = Date.now();
      if (now - this.lastWarnAt >= LIST_WARN_EVERY_MS) {
        this.logger.warn({ err: (err as Error).message, room, failedSinceLastLine: this.failedSinceWarn }, "presence: cross-instance list failed; local sockets only");
        this.lastWarnAt = now;
        this.failedSinceWarn = 0;
      } else this.failedSinceWarn++;
      return this.local(room);
    }
  }
}
