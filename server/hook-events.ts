/**
 * Calls the notification hooks `onConnect` / `onDisconnect` for the sockets of the `/codespace`
 * namespace (never awaited; failures are logged and counted by HookFailures).
 */
import type { HookFailures, ResolvedHooks } from "./hooks.js";
import type { CodespaceNamespace } from "./namespace/types.js";

export function attachHookEvents(nsp: CodespaceNamespace, hooks: ResolvedHooks, failures: HookFailures, timeoutMs: number): void {
  if (!hooks.onConnect && !hooks.onDisconnect) return;
  nsp.on("connection", (socket) => {
    const event = { codespace: socket.data.codespace, socket: socket.id, mode: socket.data.mode };
    failures.notify("onConnect", hooks.onConnect, event, timeoutMs);
    socket.on("disconnect", (reason) => failures.notify("onDisconnect", hooks.onDisconnect, { ...event, reason }, timeoutMs));
  });
}
