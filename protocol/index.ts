/**
 * The codespace protocol, shared by the server (server/) and the client (client/): event payload
 * types, error codes and the wire error shape, wire conversions and checks, and the constants a
 * client must know. docs/protocol.md is the prose contract. Imports nothing of the project's.
 */
export * from "./constants.js";
export * from "./errors.js";
export type * from "./events.js";
export * from "./wire.js";
