/** `REDIS_CLUSTER_NODES`: comma-separated `host:port` seeds -> frozen `{ host, port }[]`. */

/** One seed of a Redis Cluster. */
export interface ClusterNode {
  readonly host: string;
  readonly port: number;
}

/** The accepted shape: `host:port` entries (no scheme), comma-separated, blanks around entries allowed. */
export const CLUSTER_NODES_PATTERN = /^\s*[^\s,:/]+:\d{1,5}\s*(,\s*[^\s,:/]+:\d{1,5}\s*)*$/;

/** Parses a value matching `CLUSTER_NODES_PATTERN`. @throws Error for a port outside 1..65535. */
export function parseClusterNodes(value: string): readonly ClusterNode[] {
  return Object.freeze(
    value.split(",").map((entry) => {
      const s = entry.trim();
      const i = s.lastIndexOf(":");
      const port = Number(s.slice(i + 1));
      if (port < 1 || port > 65535) throw new Error(`port ${port} of ${s} is not in 1..65535`);
      return Object.freeze({ host: s.slice(0, i), port });
    }),
  );
}
