/**
 * `PresenceTracker`: who is in the codespace (docs/protocol.md, "Presence"), kept from the
 * `connected` payload's `users` and the `user_joined` / `user_left` events of a `CodespaceClient`.
 *
 * Socket ids are never reused, so the list and the events may arrive in any order: an id seen in a
 * `user_left` stays gone. Each `connected` (a reconnect included) replaces the list.
 */
import type { CodespaceClient } from "./codespace-client.js";
import { TypedEmitter } from "./emitter.js";
import type { UserInfo } from "../protocol/events.js";

export type { UserInfo };

export interface PresenceEvents {
  /** The list changed; `users` in join order, this client included (`self: true`). */
  change: { users: readonly PresenceUser[] };
}

export interface PresenceUser extends UserInfo {
  /** True for this client's own connection. */
  self: boolean;
}

export class PresenceTracker extends TypedEmitter<PresenceEvents> {
  readonly #client: CodespaceClient;
  readonly #users = new Map<string, UserInfo>();
  /** Ids that left: never shown again (ids are unique per connection). */
  readonly #gone = new Set<string>();
  readonly #offs: (() => void)[] = [];
  /** Joins received on the current connection before its `connected` list. */
  readonly #early = new Map<string, UserInfo>();
  #listed = false;

  /**
   * Starts tracking; construct it right after `CodespaceClient.connect` resolves (the first list is
   * read from `client.lastConnected`).
   */
  constructor(client: CodespaceClient) {
    super();
    this.#client = client;
    const s = client.socket;
    const onConnected = (p: { users?: UserInfo[] }) => this.#replace(p.users ?? []);
    const onConnect = () => {
      this.#listed = false;
      this.#early.clear();
    };
    const onJoined = (u: UserInfo) => {
      if (this.#gone.has(u.id)) return;
      if (!this.#listed) this.#early.set(u.id, u);
      this.#users.set(u.id, u);
      this.#changed();
    };
    const onLeft = (p: { id: string }) => {
      this.#gone.add(p.id);
      if (this.#users.delete(p.id)) this.#changed();
    };
    s.on("connect", onConnect);
    s.on("connected", onConnected);
    s.on("user_joined", onJoined);
    s.on("user_left", onLeft);
    this.#offs.push(
      () => s.off("connect", onConnect),
      () => s.off("connected", onConnected),
      () => s.off("user_joined", onJoined),
      () => s.off("user_left", onLeft),
    );
    const first = client.lastConnected;
    if (first) this.#replace(first.users ?? []);
  }

  /** Everyone in the codespace, this client included, in join order. */
  get users(): PresenceUser[] {
    const self = this.#client.id;
    return [...this.#users.values()].map((u) => ({ ...u, self: u.id === self }));
  }

  /** The participant with socket id `id`, if present. */
  get(id: string): UserInfo | undefined {
    return this.#users.get(id);
  }

  /** Stops listening. */
  close(): void {
    for (const off of this.#offs.splice(0)) off();
  }

  #replace(users: UserInfo[]): void {
    // Joins that arrived on this connection before its list stay applied; leaves always win.
    this.#users.clear();
    for (const u of [...users, ...this.#early.values()]) if (!this.#gone.has(u.id)) this.#users.set(u.id, u);
    this.#early.clear();
    this.#listed = true;
    this.#changed();
  }

  #changed(): void {
    this.emit("change", { users: this.users });
  }
}
