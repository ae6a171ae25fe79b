/**
 * A writer that does NOT compose: it speaks the `/codespace` protocol directly (socket.io-client),
 * keeps the text as a CodeMirror `Text`, and sends every update it is given as its own update, up to
 * `maxBatch` unconfirmed updates per `insert_value` (one batch in flight, acked, the next one taken
 * from the queue), as a client sends keystrokes when it does not compose them. It is the only writer
 * of its codespace in the benchmark, so its batches never need rebasing.
 * It asks for batched broadcasts (`auth.batches`): it reads none of them, and one packet per commit
 * is what a batching client costs the server.
 */
import { performance } from "node:perf_hooks";
import { io, type Socket } from "socket.io-client";
import { ChangeSet, Text } from "@codemirror/state";
import type { WireChange } from "../../server/protocol/events.js";
import { CONNECT_TIMEOUT_MS } from "./conn.js";

export interface RawUpdate {
  clientID: string;
  changes: WireChange[];
}

/** The server's limits on one `insert_value` (server/config.ts defaults). */
const MAX_CHANGES_PER_BATCH = 2000;

export class RawWriter {
  doc: Text;
  version: number;
  private readonly queue: RawUpdate[] = [];
  private inFlight = false;
  private lastSent = -Infinity;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private idleWaiters: (() => void)[] = [];
  error: string | undefined;
  batches = 0;

  private constructor(
    private readonly socket: Socket,
    private readonly epoch: string,
    version: number,
    code: string,
    private readonly maxBatch: number,
    private readonly minIntervalMs: number,
  ) {
    this.version = version;
    this.doc = Text.of(code.split("\n"));
  }

  /**
   * `minIntervalMs`: least time between two `insert_value`s, so the writer stays under the server's
   * per-socket rate limit (RATE_LIMIT_EVENTS per RATE_LIMIT_WINDOW_MS, default 100/s) as a
   * well-behaved client does: what piles up meanwhile goes into the next batch.
   */
  static connect(url: string, token: string, maxBatch: number, minIntervalMs = 12): Promise<RawWriter> {
    return new Promise((resolve, reject) => {
      const socket = io(url + "/codespace", { transports: ["websocket"], forceNew: true, reconnection: false, auth: { token, batches: true } });
      const timer = setTimeout(() => (socket.close(), reject(new Error(`no 'connected' from ${url}`))), CONNECT_TIMEOUT_MS);
      socket.on("connect_error", (err) => (clearTimeout(timer), reject(err)));
      socket.once("connected", (p: { epoch: string; version: number; code: string }) => {
        clearTimeout(timer);
        const writer = new RawWriter(socket, p.epoch, p.version, p.code, maxBatch, minIntervalMs);
        // a lost connection loses the ack of the batch in flight: report it instead of waiting forever
        socket.on("disconnect", (reason) => {
          writer.error ??= `disconnected: ${reason}`;
          for (const w of writer.idleWaiters.splice(0)) w();
        });
        resolve(writer);
      });
    });
  }

  /**
   * Applies `changes` (positions in the current text) locally and queues them as one update; with
   * `send` false it only queues (to fill a whole batch before the first one goes out).
   */
  edit(clientID: string, changes: ChangeSet, send = true): void {
    const wire: WireChange[] = [];
    changes.iterChanges((from, to, _fb, _tb, inserted) => wire.push({ from, to, insert: inserted.sliceString(0, inserted.length, "\n") }));
    this.doc = changes.apply(this.doc);
    this.queue.push({ clientID, changes: wire });
    if (send) this.pump();
  }

  /** Resolves when every queued update is acknowledged. */
  idle(): Promise<void> {
    if (this.error || (!this.inFlight && this.queue.length === 0)) return Promise.resolve();
    return new Promise((r) => this.idleWaiters.push(r));
  }

  close(): void {
    clearTimeout(this.timer);
    this.socket.close();
  }

  private pump(): void {
    if (this.inFlight || this.timer || this.queue.length === 0 || this.error) return;
    const wait = this.lastSent + this.minIntervalMs - performance.now();
    if (wait > 0) {
      this.timer = setTimeout(() => {
        this.timer = undefined;
        this.pump();
      }, wait);
      return;
    }
    this.lastSent = performance.now();
    let n = 0;
    let changes = 0;
    while (n < this.queue.length && n < this.maxBatch && changes + this.queue[n]!.changes.length <= MAX_CHANGES_PER_BATCH) changes += this.queue[n++]!.changes.length;
    const updates = this.queue.splice(0, Math.max(1, n));
    this.inFlight = true;
    this.batches++;
    this.socket.emit("insert_value", { epoch: this.epoch, version: this.version, updates }, (res: { ok: boolean; version?: number; error?: { code: string; message: string } }) => {
      this.inFlight = false;
      if (!res.ok) {
        this.error = `${res.error?.code}: ${res.error?.message}`;
        for (const w of this.idleWaiters.splice(0)) w();
        return;
      }
      this.version = res.version!;
      if (this.queue.length > 0) this.pump();
      else for (const w of this.idleWaiters.splice(0)) w();
    });
  }
}
