/**
 * The client events of the `/codespace` namespace (docs/protocol.md), each declared as its pipeline
 * (pipeline.ts): guards -> validate -> handle -> observers.
 */
import type { Config } from "../config.js";
import type { Logger } from "../logger.js";
import type { Metrics } from "../metrics.js";
import type { SocketRateLimiter } from "../rate-limit.js";
import { checkCreateSelection, checkInsertValue, checkPull, type PayloadLimits } from "../protocol/validate.js";
import { editMode, notShuttingDown, rateLimit } from "./guards.js";
import { countBatches, countStoreErrors, logRefusals } from "./observers.js";
import type { EventPipeline } from "./pipeline.js";

export interface EventDeps {
  config: Config;
  logger: Logger;
  /** True once shutdown began: new work is refused with `shutting_down`. */
  isShuttingDown(): boolean;
  /** Prometheus instruments (metrics.ts); absent: nothing is counted. */
  metrics?: Metrics;
  /** Per-socket rate limit of `insert_value` and `create_selection` (rate-limit.ts); absent: no limit. */
  rateLimiter?: SocketRateLimiter;
}

/** The pipelines of the client events, built once per namespace. */
export interface ClientEventPipelines {
  insert_value: EventPipeline<ReturnType<typeof checkInsertValue>>;
  create_selection: EventPipeline<ReturnType<typeof checkCreateSelection>>;
  pull: EventPipeline<ReturnType<typeof checkPull>>;
}

/** Declares the pipelines of `insert_value`, `create_selection` and `pull`. */
export function clientEvents(deps: EventDeps): ClientEventPipelines {
  const limits: PayloadLimits = deps.config;
  const shutdown = notShuttingDown(deps.isShuttingDown);
  const limited = rateLimit(deps.rateLimiter, deps.logger, deps.metrics);
  const observers = [logRefusals(deps.logger), countStoreErrors(deps.metrics)];

  const insertValue: ClientEventPipelines["insert_value"] = {
    event: "insert_value",
    guards: [shutdown, limited, editMode],
    validate: (p) => checkInsertValue(p, limits),
    handle: async (batch, { socket, codespace }) => ({ version: await codespace.submit(batch, socket.id) }),
    observers: [...observers, countBatches(deps.metrics)],
  };
  const createSelection: ClientEventPipelines["create_selection"] = {
    event: "create_selection",
    guards: [shutdown, limited, editMode],
    validate: (p) => checkCreateSelection(p, limits),
    handle: ({ selections }, { socket, room }) => {
      socket.to(room).emit("create_selection", { sender: socket.id, selections });
      return {};
    },
    observers,
  };
  const pull: ClientEventPipelines["pull"] = {
    event: "pull",
    guards: [shutdown],
    validate: checkPull,
    handle: ({ epoch, version }, { codespace }) => codespace.pull(epoch, version),
    observers,
  };
  return { insert_value: insertValue, create_selection: createSelection, pull };
}
