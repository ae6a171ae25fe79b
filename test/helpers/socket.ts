/**
 * Small socket.io-client helpers for tests of the `/codespace` namespace (docs/protocol.md).
 * Sockets are created with `forceNew: true` and, unless asked otherwise, `reconnection: false`.
 */
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type { ClientToServerEvents, ConnectedPayload, ServerToClientEvents } from "../../protocol/events.js";
import type { WireError } from "../../protocol/errors.js";

export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;
export type AnySocket = Socket<any, any>;
export type Transport = "polling" | "websocket";
export const TRANSPORTS: readonly (readonly Transport[])[] = [["polling"], ["websocket"]];

/** A handshake rejection as the client sees it: `message` is human, `data.code` the stable code. */
export interface ConnectError extends Error {
  data?: WireError;
}

export interface ConnectOptions extends Partial<ManagerOptions & SocketOptions> {
  /** Reject if `connected` has not arrived by then. Default 5000 ms. */
  timeoutMs?: number;
}

/** Removes a trailing `/`, for `${base}/codespace`. */
function trimSlash(url: string): string {
  return url.endsWith("/") ? url.slice(0, -1) : url;
}

/**
 * Connects to `${url}/codespace` with `auth: { token }` (`token === undefined`: `auth: {}`, so any
 * value, a number or an object included, can be tried) and resolves once the server's `connected`
 * event arrives. Rejects with the `connect_error` itself (its `data` kept), or on a disconnect or
 * timeout first; the socket is closed on rejection.
 */
export function connectSocket(
  url: string,
  token: unknown,
  transports: readonly Transport[] = ["websocket"],
  options: ConnectOptions = {},
): Promise<{ socket: ClientSocket; connected: ConnectedPayload }> {
  const { timeoutMs = 5000, ...ioOptions } = options;
  const socket: ClientSocket = io(`${trimSlash(url)}/codespace`, {
    reconnection: false,
    forceNew: true,
    ...ioOptions,
    transports: [...transports],
    // `options.auth` replaces the whole auth object (e.g. `{ token, name }`)
    auth: (ioOptions as { auth?: object }).auth ?? (token === undefined ? {} : { token }),
  } as Partial<ManagerOptions & SocketOptions>);

  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off("connected", onConnected);
      socket.off("connect_error", onError);
      socket.off("disconnect", onDisconnect);
    };
    const fail = (err: Error): void => {
      cleanup();
      socket.close();
      reject(err);
    };
    const onConnected = (payload: ConnectedPayload): void => {
      cleanup();
      resolve({ socket, connected: payload });
    };
    const onError = (err: Error): void => fail(err);
    const onDisconnect = (reason: string): void =>
      fail(new Error(`disconnected (${reason}) before the connected event`));
    const timer = setTimeout(
      () => fail(new Error(`no connected event within ${timeoutMs} ms (transports ${transports.join(",")})`)),
      timeoutMs,
    );
    socket.on("connected", onConnected);
    socket.on("connect_error", onError);
    socket.on("disconnect", onDisconnect);
  });
}

/**
 * Connects and expects a handshake rejection; resolves with the `connect_error` (rejects if the
 * socket connects instead).
 */
export async function expectConnectError(
  url: string,
  token: unknown,
  transports: readonly Transport[] = ["websocket"],
  options: ConnectOptions = {},
): Promise<ConnectError> {
  let res: { socket: ClientSocket; connected: ConnectedPayload };
  try {
    res = await connectSocket(url, token, transports, options);
  } catch (err) {
    return err as ConnectError;
  }
  res.socket.close();
  throw new Error(`expected a connect_error, but connected: ${JSON.stringify(res.connected)}`);
}

type AckOf<E extends keyof ClientToServerEvents> = Parameters<NonNullable<Parameters<ClientToServerEvents[E]>[1]>>[0];

/**
 * Emits `event` with `payload` and an acknowledgement callback; resolves with the ack, rejects if
 * none arrives within `timeoutMs` (default 5000).
 */
export function emitAck<E extends keyof ClientToServerEvents>(
  socket: AnySocket,
  event: E,
  payload: unknown,
  timeoutMs?: number,
): Promise<AckOf<E>>;
export function emitAck<T = unknown>(socket: AnySocket, event: string, payload: unknown, timeoutMs?: number): Promise<T>;
export function emitAck(socket: AnySocket, event: string, payload: unknown, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    socket.timeout(timeoutMs).emit(event, payload, (err: Error | null, res: unknown) => {
      if (err) reject(new Error(`no ack for ${event} within ${timeoutMs} ms`));
      else resolve(res);
    });
  });
}

/**
 * Resolves with the first argument of the next `name` event. Rejects after `timeoutMs` (default
 * 5000), or if the socket disconnects first (unless `name` is `disconnect`).
 */
export function nextEvent<E extends keyof ServerToClientEvents>(
  socket: AnySocket,
  name: E,
  timeoutMs?: number,
): Promise<Parameters<ServerToClientEvents[E]>[0]>;
export function nextEvent<T = unknown>(socket: AnySocket, name: string, timeoutMs?: number): Promise<T>;
export function nextEvent(socket: AnySocket, name: string, timeoutMs = 5000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const cleanup = (): void => {
      clearTimeout(timer);
      socket.off(name, onEvent);
      socket.off("disconnect", onDisconnect);
    };
    const onEvent = (payload: unknown): void => {
      cleanup();
      resolve(payload);
    };
    const onDisconnect = (reason: string): void => {
      cleanup();
      reject(new Error(`disconnected (${reason}) while waiting for ${name}`));
    };
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`no ${name} event within ${timeoutMs} ms`));
    }, timeoutMs);
    socket.on(name, onEvent);
    if (name !== "disconnect") socket.on("disconnect", onDisconnect);
  });
}
