/**
 * The wire contract's types live in the protocol module (protocol/events.ts), shared with clients;
 * re-exported here for the server modules that import them from this path.
 */
export type * from "../../protocol/events.js";
export { NAMESPACE } from "../../protocol/constants.js";
