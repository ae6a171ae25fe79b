/**
 * Startup failures as one clear line (every entry point: server/main.ts, cluster workers): the
 * caller writes `<program>: could not start: <line>` to stderr and exits 1. No stack trace: what an
 * operator can fix is named (the variable to change, the folder to fix).
 */
import type { Config } from "./config.js";

/** One line describing why the process could not start. */
export function describeStartupError(err: unknown, config: Pick<Config, "port" | "host">): string {
  const e = err as NodeJS.ErrnoException & { syscall?: string };
  if (e?.syscall === "listen") {
    const where = `${config.host}:${config.port}`;
    if (e.code === "EADDRINUSE") return `port ${config.port} is already in use on ${config.host} (set PORT to a free port, or stop what holds it)`;
    if (e.code === "EACCES") return `no permission to listen on ${where} (ports below 1024 need privileges: set PORT)`;
    if (e.code === "EADDRNOTAVAIL") return `HOST ${config.host} is not an address of this machine (set HOST, e.g. 0.0.0.0)`;
    return `cannot listen on ${where}: ${e.message}`;
  }
  const message = err instanceof Error ? err.message : String(err);
  return message.split("\n")[0] ?? message;
}

/** Writes `<program>: could not start: <line>` to stderr and exits 1. */
export function exitOnStartupError(program: string, err: unknown, config: Pick<Config, "port" | "host">): never {
  process.stderr.write(`${program}: could not start: ${describeStartupError(err, config)}\n`);
  process.exit(1);
}
