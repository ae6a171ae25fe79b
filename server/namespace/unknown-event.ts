/** Any event a client may not send is answered with `invalid_payload` (an ack must never hang). */
import { InvalidPayloadError } from "../errors.js";
import type { ClientToServerEvents } from "../protocol/events.js";
import type { CodespaceSocket } from "./types.js";

/** The events a client may send (docs/protocol.md). */
const CLIENT_EVENTS: ReadonlySet<string> = new Set<keyof ClientToServerEvents>(["insert_value", "create_selection", "pull"]);

export function answerUnknownEvents(socket: CodespaceSocket): void {
  socket.onAny((event: unknown, ...args: unknown[]) => {
    if (typeof event === "string" && CLIENT_EVENTS.has(event)) return;
    const name = String(event).slice(0, 64);
    const error = new InvalidPayloadError(`unknown event "${name}"`).toWire();
    const ack = args[args.length - 1];
    if (typeof ack === "function") (ack as (res: object) => void)({ ok: false, error });
    else socket.emit("operation_error", { event: name, error });
  });
}
