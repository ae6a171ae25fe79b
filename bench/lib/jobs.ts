/** Jobs the orchestrator (bench/run.ts) hands to the load generator (bench/load/loadgen.ts), and their results. */

/**
 * `sio`: Socket.IO `/codespace` protocol (our server, baseline c); `ws`: raw WebSocket JSON frames
 * (baseline d); `hocuspocus`: Hocuspocus's protocol with Yjs (peer e); `sharedb`: ShareDB's client (peer f).
 */
export type Proto = "sio" | "ws" | "hocuspocus" | "sharedb";

export interface FanoutJob {
  kind: "fanout";
  proto: Proto;
  /** Server URLs; member j of a room connects to urls[j % urls.length] (cross-process rooms with 2). */
  urls: string[];
  roomSize: number;
  rooms: number;
  /** The first `writersPerRoom` members of each room write; everyone (writers too) receives. */
  writersPerRoom: number;
  /** Edits per second per writer (open loop: sent on schedule whatever the answers). */
  ratePerWriter: number;
  warmupMs: number;
  durationMs: number;
  /** Longest wait for the last deliveries after sending stops. */
  drainMs: number;
  /** Room / codespace names are `${tokenPrefix}${room}`. */
  tokenPrefix: string;
}

export interface IdleJob {
  kind: "idle";
  proto: Proto;
  urls: string[];
  connections: number;
  roomSize: number;
  tokenPrefix: string;
}

export interface TraceJob {
  kind: "trace";
  /** The writer connects to urls[0], reader i to urls[(i + 1) % urls.length]. */
  urls: string[];
  tracePath: string;
  readers: number;
  /** Replay only the first N transactions (smoke); 0: all. */
  limit: number;
  /** Transactions applied per event-loop turn by the writer (the client batches what piles up). */
  chunk: number;
  token: string;
  timeoutMs: number;
  /**
   * `composing`: the writer is a `CodespaceClient` (one batch in flight, what piles up composed into
   * one update); `keystrokes`: a RawWriter sending one update per transaction, up to `maxBatch`
   * unconfirmed updates per `insert_value`.
   */
  mode: "composing" | "keystrokes";
  maxBatch: number;
}

/**
 * Commit cost against document size: the codespace `token` already holds a document (the
 * orchestrator wrote it to Redis as the site does); one RawWriter on urls[0] sends `edits`
 * one-character inserts at line starts, `batch` updates per `insert_value`, each batch awaited; a
 * second connection on urls[1] makes the other process host the codespace too. Inserts cycle
 * through `inserts`.
 */
export interface DocSizeJob {
  kind: "docsize";
  urls: string[];
  token: string;
  edits: number;
  batch: number;
  inserts: string[];
}

export type Job = FanoutJob | IdleJob | TraceJob | DocSizeJob;

export interface Latency {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface FanoutResult {
  kind: "fanout";
  connections: number;
  offeredEditsPerSec: number;
  measuredEdits: number;
  expectedDeliveries: number;
  deliveries: number;
  losses: number;
  duplicates: number;
  outOfOrder: number;
  deliveriesPerSec: number;
  /** From the start of the measured window to the last measured delivery. */
  windowMs: number;
  /** Delivery delay of measured edits, milliseconds (HDR histogram, microsecond resolution). */
  latencyMs: Latency;
  /** The deliveries to receivers on the writer's own server process. */
  latencySameProcessMs?: Latency;
  /** The deliveries to receivers on another server process (two-process targets only). */
  latencyCrossProcessMs?: Latency;
  acks: number;
  ackErrors: Record<string, number>;
  loadgenCpuSec: number;
  connectMs: number;
}

export interface IdleResult {
  kind: "idle";
  connections: number;
  connectMs: number;
}

export interface TraceResult {
  kind: "trace";
  trace: string;
  transactions: number;
  /** Versions the server produced (the client composes what piles up while a batch is in flight). */
  serverUpdates: number;
  finalLength: number;
  readers: number;
  /** First local edit to the writer having everything confirmed. */
  writerSyncedMs: number;
  /** First local edit to the last reader holding the final version and the exact end text. */
  lastReaderConvergedMs: number;
  /** Writer's last local edit to the last reader's convergence. */
  tailMs: number;
  transactionsPerSec: number;
  mode: TraceJob["mode"];
  /** insert_value calls the writer made. */
  batches: number;
  serverUpdatesPerSec: number;
  converged: boolean;
  errors: string[];
  loadgenCpuSec: number;
}

export interface DocSizeResult {
  kind: "docsize";
  /** insert_value calls (= commits when nothing else writes). */
  commits: number;
  updates: number;
  /** Final text of the writer (UTF-16 length) and its SHA-1 (UTF-8), to compare with the stored `code`. */
  finalLength: number;
  sha1: string;
  errors: string[];
  elapsedMs: number;
}

export type JobResult = FanoutResult | IdleResult | TraceResult | DocSizeResult;

/** Load generator -> orchestrator. */
export type LoadMessage =
  | { type: "rpc"; id: number; name: "sample" }
  | { type: "result"; result: JobResult }
  | { type: "error"; message: string };
/** Orchestrator -> load generator. */
export type OrchestratorMessage = { type: "job"; job: Job } | { type: "rpc-result"; id: number };
