/**
 * The URL a server listening on HOST:PORT is reached at, for the `listening` log line: a wildcard
 * HOST (`0.0.0.0`, `::`) reads as `localhost`, an IPv6 address is bracketed (`http://[::1]:8888`).
 */
export function listenUrl(host: string, port: number): string {
  const name = host === "0.0.0.0" || host === "::" ? "localhost" : host.includes(":") ? `[${host}]` : host;
  return `http://${name}:${port}`;
}
