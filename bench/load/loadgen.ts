/**
 * The load generator: a separate process (forked by bench/run.ts) that opens many client connections
 * and runs one job (fan-out, idle connections, or a real-trace replay), asking the orchestrator to
 * sample the servers' own CPU/memory accounting at the edges of the measured window (`rpc sample`).
 *
 * Fan-out edits: every edit is one `insert_value` with a fresh clientID `${writer}.${seq}` (so edits
 * of one socket are independent collab clients and may be in flight together: the offered load is
 * open-loop), based on the newest version the writer has seen, inserting `${seq} ` at 0. The send
 * time is kept by (writer, seq); each receiver records the delay when the broadcast arrives.
 * Fan-out sockets do not ask for batched broadcasts (`auth.batches`): every edit is its own update,
 * so each `insert_value` packet is exactly one delivery of one update, as for the relay and peers.
 * The trace replay's readers are CodespaceClients, which ask for batches (one packet per commit).
 */
import { gunzipSync } from "node:zlib";
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { performance } from "node:perf_hooks";
import { io, type Socket } from "socket.io-client";
import { WebSocket } from "ws";
import * as hdr from "hdr-histogram-js";
import { ChangeSet } from "@codemirror/state";
import { CodespaceClient } from "../../client/index.js";
import { connectHocuspocus, connectSharedb } from "./peers.js";
import { CONNECT_TIMEOUT_MS, type Conn, type ConnHandlers } from "./conn.js";
import { RawWriter } from "./raw-writer.js";
import type {
  DocSizeJob, DocSizeResult, FanoutJob, FanoutResult, IdleJob, IdleResult, Job, JobResult, Latency, LoadMessage, OrchestratorMessage, Proto, TraceJob, TraceResult,
} from "../lib/jobs.js";

// ---- IPC -----------------------------------------------------------------------------------------

let rpcSeq = 0;
const rpcWaiting = new Map<number, () => void>();
function post(m: LoadMessage): void {
  process.send!(m);
}
/** Asks the orchestrator to sample the servers now; resolves once it has. */
function sample(): Promise<void> {
  const id = ++rpcSeq;
  return new Promise((resolve) => {
    rpcWaiting.set(id, resolve);
    post({ type: "rpc", id, name: "sample" });
  });
}

// ---- connections ---------------------------------------------------------------------------------


function connectSio(url: string, token: string, h: ConnHandlers): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const socket: Socket = io(url + "/codespace", {
      transports: ["websocket"],
      forceNew: true,
      reconnection: false,
      timeout: CONNECT_TIMEOUT_MS,
      auth: { token },
    });
    let epoch = "";
    let version = 0;
    const timer = setTimeout(() => fail(new Error(`no 'connected' from ${url} within ${CONNECT_TIMEOUT_MS} ms`)), CONNECT_TIMEOUT_MS);
    const fail = (err: Error): void => {
      clearTimeout(timer);
      socket.close();
      reject(err);
    };
    socket.on("connect_error", (err) => fail(err));
    socket.on("insert_value", (u: { clientID: string; version: number }) => {
      if (u.version > version) version = u.version;
      h.onUpdate(u.clientID, u.version);
    });
    socket.once("connected", (p: { epoch: string; version: number }) => {
      clearTimeout(timer);
      epoch = p.epoch;
      version = p.version;
      resolve({
        sendEdit(clientID, seq, ack) {
          socket.emit(
            "insert_value",
            { epoch, version, updates: [{ clientID, changes: [{ from: 0, to: 0, insert: `${seq} ` }] }] },
            ack,
          );
        },
        close: () => socket.close(),
      });
    });
  });
}

function connectWs(url: string, room: string, h: ConnHandlers): Promise<Conn> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${url.replace(/^http/, "ws")}/?room=${encodeURIComponent(room)}`, { perMessageDeflate: false });
    const timer = setTimeout(() => {
      ws.terminate();
      reject(new Error(`ws ${url} did not open within ${CONNECT_TIMEOUT_MS} ms`));
    }, CONNECT_TIMEOUT_MS);
    ws.on("error", (err) => {
      clearTimeout(timer);
      reject(err);
    });
    ws.on("message", (data: Buffer) => {
      const m = JSON.parse(data.toString()) as { clientID: string };
      h.onUpdate(m.clientID, 0);
    });
    ws.once("open", () => {
      clearTimeout(timer);
      resolve({
        sendEdit(clientID, seq) {
          ws.send(JSON.stringify({ clientID, changes: [{ from: 0, to: 0, insert: `${seq} ` }] }));
        },
        close: () => ws.close(),
      });
    });
  });
}

function connect(proto: Proto, url: string, room: string, h: ConnHandlers): Promise<Conn> {
  switch (proto) {
    case "sio":
      return connectSio(url, room, h);
    case "ws":
      return connectWs(url, room, h);
    case "hocuspocus":
      return connectHocuspocus(url, room, h);
    case "sharedb":
      return connectSharedb(url, room, h);
  }
}

/** Runs `fn(0..n-1)` with at most `concurrency` in flight; results in index order. */
async function pool<T>(n: number, concurrency: number, fn: (i: number) => Promise<T>): Promise<T[]> {
  const out = new Array<T>(n);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < n) {
      const i = next++;
      out[i] = await fn(i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, n) }, worker));
  return out;
}

function cpuSec(since: NodeJS.CpuUsage): number {
  const d = process.cpuUsage(since);
  return (d.user + d.system) / 1e6;
}

// ---- fan-out -------------------------------------------------------------------------------------

interface Writer {
  conn?: Conn;
  room: number;
  /** Send time (performance.now()) by seq. */
  sentAt: number[];
  /** Seqs in [measureFrom, measureTo) are measured. */
  measureFrom: number;
  measureTo: number;
  phase: number;
  /** Index of the server process (url) the writer is connected to. */
  proc: number;
}

interface Receiver {
  /** Index of the server process (url) the receiver is connected to. */
  proc: number;
  /** Per writer (global index): last seq received, and which seqs arrived. */
  lastSeq: Map<number, number>;
  seen: Map<number, Uint8Array>;
}

function latencyOf(h: hdr.Histogram): Latency {
  const ms = (us: number): number => Math.round(us) / 1000;
  return {
    count: h.totalCount,
    p50: ms(h.getValueAtPercentile(50)),
    p90: ms(h.getValueAtPercentile(90)),
    p99: ms(h.getValueAtPercentile(99)),
    p999: ms(h.getValueAtPercentile(99.9)),
    max: ms(h.maxValue),
    mean: ms(h.mean),
  };
}

async function fanout(job: FanoutJob): Promise<FanoutResult> {
  const newHist = (): hdr.Histogram => hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 120_000_000, numberOfSignificantValueDigits: 3 });
  const hist = newHist();
  // the same deliveries split by path: receiver on the writer's process, or on another one
  const histSame = newHist();
  const histCross = newHist();
  const writers: Writer[] = [];
  let measuring = false;
  let deliveries = 0;
  let duplicates = 0;
  let outOfOrder = 0;
  let lastDelivery = 0;
  let acks = 0;
  const ackErrors: Record<string, number> = {};

  const onDelivery = (r: Receiver, clientID: string): void => {
    const now = performance.now();
    const dot = clientID.indexOf(".");
    const w = Number(clientID.slice(0, dot));
    const seq = Number(clientID.slice(dot + 1));
    const writer = writers[w];
    if (!writer) return;
    let seen = r.seen.get(w);
    if (!seen || seen.length <= seq) {
      const grown = new Uint8Array(Math.max(1024, (seq + 1) * 2));
      if (seen) grown.set(seen);
      r.seen.set(w, (seen = grown));
    }
    if (seen[seq]) {
      duplicates++;
      return;
    }
    seen[seq] = 1;
    const last = r.lastSeq.get(w) ?? -1;
    if (seq < last) outOfOrder++;
    else r.lastSeq.set(w, seq);
    if (seq < writer.measureFrom || seq >= writer.measureTo) return;
    deliveries++;
    lastDelivery = now;
    const us = Math.max(1, Math.round((now - writer.sentAt[seq]!) * 1000));
    hist.recordValue(us);
    (r.proc === writer.proc ? histSame : histCross).recordValue(us);
  };

  // rooms: member j of room k connects to urls[j % urls.length]; members 0..W-1 write
  const t0 = performance.now();
  const n = job.rooms * job.roomSize;
  const conns = await pool(n, 100, async (i) => {
    const room = Math.floor(i / job.roomSize);
    const member = i % job.roomSize;
    const proc = member % job.urls.length;
    const r: Receiver = { proc, lastSeq: new Map(), seen: new Map() };
    let writer: Writer | undefined;
    if (member < job.writersPerRoom) {
      writer = { room, sentAt: [], measureFrom: Infinity, measureTo: Infinity, phase: Math.random(), proc };
      writers.push(writer);
    }
    const conn = await connect(job.proto, job.urls[member % job.urls.length]!, `${job.tokenPrefix}${room}`, {
      onUpdate: (clientID) => onDelivery(r, clientID),
    });
    if (writer) writer.conn = conn;
    return conn;
  });
  const connectMs = performance.now() - t0;

  // open-loop schedule: writer w has sent floor(elapsed * rate + phase) edits by then
  const writerIndex = new Map(writers.map((w, i) => [w, i]));
  const onAck = (res: { ok: boolean; error?: { code: string } }): void => {
    if (res.ok) acks++;
    else ackErrors[res.error?.code ?? "unknown"] = (ackErrors[res.error?.code ?? "unknown"] ?? 0) + 1;
  };
  let sending = true;
  const start = performance.now();
  const tick = (): void => {
    if (!sending) return;
    const now = performance.now();
    const elapsedSec = (now - start) / 1000;
    for (const w of writers) {
      const due = Math.floor(elapsedSec * job.ratePerWriter + w.phase);
      const idx = writerIndex.get(w)!;
      while (w.sentAt.length < due) {
        const seq = w.sentAt.length;
        if (measuring && w.measureFrom === Infinity) w.measureFrom = seq;
        w.sentAt.push(performance.now());
        w.conn!.sendEdit(`${idx}.${seq}`, seq, onAck);
      }
    }
    setTimeout(tick, 1);
  };
  tick();

  await sleep(job.warmupMs);
  await sample();
  const cpu0 = process.cpuUsage();
  measuring = true;
  const measureStart = performance.now();
  await sleep(job.durationMs);
  sending = false;
  for (const w of writers) {
    if (w.measureFrom === Infinity) w.measureFrom = w.sentAt.length;
    w.measureTo = w.sentAt.length;
  }
  const measuredEdits = writers.reduce((s, w) => s + (w.measureTo - w.measureFrom), 0);
  const expected = measuredEdits * job.roomSize;
  const drainEnd = performance.now() + job.drainMs;
  while (deliveries < expected && performance.now() < drainEnd) await sleep(10);
  await sample();
  const loadgenCpuSec = cpuSec(cpu0);
  const windowMs = Math.max(1, (deliveries > 0 ? lastDelivery : performance.now()) - measureStart);
  for (const c of conns) c.close();
  return {
    kind: "fanout",
    connections: n,
    offeredEditsPerSec: writers.length * job.ratePerWriter,
    measuredEdits,
    expectedDeliveries: expected,
    deliveries,
    losses: expected - deliveries,
    duplicates,
    outOfOrder,
    deliveriesPerSec: Math.round((deliveries / windowMs) * 1000),
    windowMs: Math.round(windowMs),
    latencyMs: latencyOf(hist),
    latencySameProcessMs: latencyOf(histSame),
    latencyCrossProcessMs: job.urls.length > 1 ? latencyOf(histCross) : undefined,
    acks,
    ackErrors,
    loadgenCpuSec,
    connectMs: Math.round(connectMs),
  };
}

// ---- idle connections ----------------------------------------------------------------------------

async function idle(job: IdleJob): Promise<IdleResult> {
  const none: ConnHandlers = { onUpdate: () => {} };
  // warm the servers' lazy paths, then sample the baseline
  const warm = await pool(Math.min(20, job.connections), 20, (i) =>
    connect(job.proto, job.urls[i % job.urls.length]!, `${job.tokenPrefix}warm${Math.floor(i / job.roomSize)}`, none),
  );
  for (const c of warm) c.close();
  await sleep(500);
  await sample();
  const t0 = performance.now();
  const conns = await pool(job.connections, 200, (i) =>
    connect(job.proto, job.urls[(i % job.roomSize) % job.urls.length]!, `${job.tokenPrefix}${Math.floor(i / job.roomSize)}`, none),
  );
  const connectMs = performance.now() - t0;
  await sleep(1000);
  await sample();
  for (const c of conns) c.close();
  return { kind: "idle", connections: conns.length, connectMs: Math.round(connectMs) };
}

// ---- real trace replay ---------------------------------------------------------------------------

interface SequentialTrace {
  startContent?: string;
  endContent: string;
  txns: { patches: [number, number, string][] }[];
}

async function trace(job: TraceJob): Promise<TraceResult> {
  const data = JSON.parse(gunzipSync(readFileSync(job.tracePath)).toString("utf8")) as SequentialTrace;
  const txns = job.limit > 0 ? data.txns.slice(0, job.limit) : data.txns;
  // expected end text: the trace's, or (truncated) the patches applied to a plain string
  let endContent = data.endContent;
  if (txns.length !== data.txns.length) {
    let s = data.startContent ?? "";
    for (const t of txns) for (const [pos, del, ins] of t.patches) s = s.slice(0, pos) + ins + s.slice(pos + del);
    endContent = s;
  }
  const errors: string[] = [];
  const opts = { transports: ["websocket" as const], socketOptions: { reconnection: false } };
  const keystrokes = job.mode === "keystrokes";
  // composing: a CodespaceClient; keystrokes: a RawWriter (one update per transaction)
  const client = keystrokes ? undefined : await CodespaceClient.connect(job.urls[0]!, job.token, opts);
  const raw = keystrokes ? await RawWriter.connect(job.urls[0]!, job.token, job.maxBatch) : undefined;
  const readers = await Promise.all(
    Array.from({ length: job.readers }, (_, i) => CodespaceClient.connect(job.urls[(i + 1) % job.urls.length]!, job.token, opts)),
  );
  for (const c of client ? [client, ...readers] : readers) c.on("error", (e) => errors.push(`${e.code}: ${e.message}`));
  const docLength = (): number => (raw ? raw.doc.length : client!.state.doc.length);
  const applyTxn = (cs: ChangeSet): void => (raw ? raw.edit("keys", cs) : client!.applyLocal(cs));
  const synced = (): Promise<void> => (raw ? raw.idle() : client!.whenSynced());
  const version = (): number => (raw ? raw.version : client!.version);
  const writerText = (): string => (raw ? raw.doc.toString() : client!.text);
  if (writerText() !== (data.startContent ?? "")) {
    applyTxn(ChangeSet.of({ from: 0, to: docLength(), insert: data.startContent ?? "" }, docLength()));
    await synced();
  }
  const baseVersion = version();
  await sample();
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  let i = 0;
  await new Promise<void>((resolve) => {
    const step = (): void => {
      const end = Math.min(txns.length, i + job.chunk);
      for (; i < end; i++) {
        const patches = txns[i]!.patches;
        if (patches.length === 1 && !raw) {
          const [pos, del, ins] = patches[0]!;
          client!.applyLocal([{ from: pos, to: pos + del, insert: ins }]);
        } else if (patches.length === 1) {
          const [pos, del, ins] = patches[0]!;
          applyTxn(ChangeSet.of({ from: pos, to: pos + del, insert: ins }, docLength()));
        } else {
          let cs = ChangeSet.empty(docLength());
          for (const [pos, del, ins] of patches) cs = cs.compose(ChangeSet.of({ from: pos, to: pos + del, insert: ins }, cs.newLength));
          applyTxn(cs);
        }
      }
      if (i < txns.length) setImmediate(step);
      else resolve();
    };
    step();
  });
  const lastLocal = performance.now();
  const deadline = new Promise<never>((_, reject) => setTimeout(() => reject(new Error(`trace replay not converged within ${job.timeoutMs} ms`)), job.timeoutMs).unref());
  let converged = false;
  let writerSynced = 0;
  let lastReader = 0;
  try {
    await Promise.race([synced(), deadline]);
    if (raw?.error) throw new Error(`writer refused: ${raw.error}`);
    writerSynced = performance.now();
    const finalVersion = version();
    await Promise.race([
      Promise.all(
        readers.map(async (r) => {
          await r.waitForVersion(finalVersion);
          lastReader = Math.max(lastReader, performance.now());
        }),
      ),
      deadline,
    ]);
    converged = writerText() === endContent && readers.every((r) => r.text === endContent && r.version === finalVersion);
    if (!converged) errors.push("a reader or the writer does not hold the trace's end text");
  } catch (err) {
    errors.push((err as Error).message);
  }
  await sample();
  const serverUpdates = version() - baseVersion;
  client?.close();
  raw?.close();
  for (const c of readers) c.close();
  const total = (lastReader || performance.now()) - t0;
  return {
    kind: "trace",
    trace: basename(job.tracePath),
    mode: job.mode,
    batches: raw ? raw.batches : 0,
    transactions: txns.length,
    serverUpdates,
    finalLength: endContent.length,
    readers: job.readers,
    writerSyncedMs: Math.round(writerSynced - t0),
    lastReaderConvergedMs: Math.round(total),
    tailMs: Math.round((lastReader || performance.now()) - lastLocal),
    transactionsPerSec: Math.round((txns.length / total) * 1000),
    serverUpdatesPerSec: Math.round((serverUpdates / total) * 1000),
    converged,
    errors: errors.slice(0, 10),
    loadgenCpuSec: cpuSec(cpu0),
  };
}

// ---- commit cost against document size -------------------------------------------------------------

async function docsize(job: DocSizeJob): Promise<DocSizeResult> {
  const writer = await RawWriter.connect(job.urls[0]!, job.token, job.batch);
  const other = await RawWriter.connect(job.urls[1 % job.urls.length]!, job.token, 1);
  const errors: string[] = [];
  let seed = 12345;
  const rand = (n: number): number => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
  await sample();
  const t0 = performance.now();
  let sent = 0;
  while (sent < job.edits && !writer.error) {
    const n = Math.min(job.batch, job.edits - sent);
    for (let k = 0; k < n; k++, sent++) {
      const at = writer.doc.line(1 + rand(writer.doc.lines)).from; // a line start never splits a surrogate pair
      writer.edit("w", ChangeSet.of({ from: at, insert: job.inserts[sent % job.inserts.length]! }, writer.doc.length), k === n - 1);
    }
    await writer.idle();
  }
  const elapsedMs = performance.now() - t0;
  await sample();
  if (writer.error) errors.push(writer.error);
  const text = writer.doc.toString();
  writer.close();
  other.close();
  return {
    kind: "docsize",
    commits: writer.batches,
    updates: sent,
    finalLength: text.length,
    sha1: createHash("sha1").update(text).digest("hex"),
    errors,
    elapsedMs: Math.round(elapsedMs),
  };
}

// ---- main ----------------------------------------------------------------------------------------

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

async function run(job: Job): Promise<JobResult> {
  if (job.kind === "fanout") return fanout(job);
  if (job.kind === "idle") return idle(job);
  if (job.kind === "docsize") return docsize(job);
  return trace(job);
}

process.on("message", (m: OrchestratorMessage) => {
  if (m.type === "rpc-result") {
    rpcWaiting.get(m.id)?.();
    rpcWaiting.delete(m.id);
    return;
  }
  run(m.job).then(
    (result) => {
      post({ type: "result", result });
      setTimeout(() => process.exit(0), 200);
    },
    (err: Error) => {
      post({ type: "error", message: err.stack ?? err.message });
      setTimeout(() => process.exit(1), 200);
    },
  );
});
