/**
 * The Redis keys the server keeps for itself beside the codespaces, all under KEY_PREFIX like them
 * (docs/operations.md, "Saves" and "Presence after a crash"). A codespace whose id is one of them
 * would share its key: `isReservedCodespaceId` lets the handshake refuse such an id.
 */

/** The due-save index (a sorted set). */
export const SAVE_INDEX = "codespace:saves";

/** Every presence key (heartbeats, member lists, the node set, dead marks) starts with this. */
export const PRESENCE_KEY_PART = "presence:";

/** True for an id whose key would be one of the server's own keys. */
export function isReservedCodespaceId(id: string): boolean {
  return id === SAVE_INDEX || id.startsWith(PRESENCE_KEY_PART);
}
