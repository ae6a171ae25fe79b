/**
 * A promise rejection that nobody handled (typically inside a library: a Redis command of an adapter
 * whose node is down) would end the process under Node's default (`--unhandled-rejections=throw`),
 * taking every codespace of the process with it. A server process logs it as one error line and keeps
 * serving instead; thrown exceptions (`uncaughtException`) still end the process, since its state
 * may then be broken.
 */
import type { Logger } from "./logger.js";

/** Installs the handler once per process (server/main.ts, cluster workers). */
export function logUnhandledRejections(logger: Logger): void {
  process.on("unhandledRejection", (reason) => {
    const err = reason instanceof Error ? reason : new Error(String(reason));
    logger.error({ err }, "unhandled promise rejection (ignored; please report it)");
  });
}
