/**
 * The concurrent real trace (clownschool: three people editing at once, a causal graph) replayed
 * by three agents on two server processes over one Redis, each agent a @codemirror/collab state on
 * its own raw socket. Every transaction is made where its author really made it: on a document
 * holding exactly its causal parents (the author's synced prefix of the server's history plus its
 * own unconfirmed updates), then pushed with all of the author's unconfirmed updates (so updates
 * the server already has are resent and must be deduplicated) and rebased by the server over what
 * the author had not seen. Everyone and the stored `code` must end at the trace's endContent.
 */
import { after, before, test } from "./helpers/bounded.js";
import assert from "node:assert/strict";
import { ChangeSet, EditorState } from "@codemirror/state";
import { collab, getSyncedVersion, receiveUpdates, sendableUpdates } from "@codemirror/collab";
import type { InsertValueBroadcast } from "../protocol/events.js";
import { changesToWire } from "../protocol/wire.js";
import { startServersOnRedis, type ServersOnRedis } from "./helpers/servers-on-redis.js";
import { connectSocket, emitAck, type ClientSocket } from "./helpers/socket.js";
import { loadTrace, type ConcurrentTrace } from "./helpers/traces.js";

/**
 * For each transaction, the server version its author must have synced to: the longest prefix of
 * the history (transactions are committed in index order, one update each) inside its causal
 * closure. Per-agent chains make the closure a version vector.
 */
function syncPoints(trace: ConcurrentTrace): number[] {
  const n = trace.txns.length;
  const agentOf = trace.txns.map((t) => t.agent);
  const vv: number[][] = new Array(n);
  const synced = new Array(trace.numAgents).fill(0);
  const points: number[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const v = new Array(trace.numAgents).fill(-1);
    for (const p of trace.txns[i]!.parents) {
      vv[p]!.forEach((x, a) => (v[a] = Math.max(v[a], x)));
      v[agentOf[p]!] = Math.max(v[agentOf[p]!], p);
    }
    vv[i] = v;
    const a = agentOf[i]!;
    let s = synced[a];
    while (s < i && s <= v[agentOf[s]!]) s++;
    for (let j = s; j < i; j++) {
      if (j <= v[agentOf[j]!] && agentOf[j] !== a) throw new Error(`transaction ${i} cannot be replayed in index order`);
    }
    points[i] = synced[a] = s;
  }
  return points;
}

class Agent {
  state: EditorState;
  private authorityLength = 0;
  private readonly inbox = new Map<number, InsertValueBroadcast>();
  private wake: (() => void) | null = null;

  constructor(
    readonly socket: ClientSocket,
    readonly clientID: string,
  ) {
    this.state = EditorState.create({ extensions: [EditorState.lineSeparator.of("\n"), collab({ clientID })] });
    socket.on("insert_value", (u) => {
      this.inbox.set(u.version, u);
      this.wake?.();
    });
  }

  /** Applies the server's updates up to `version`, waiting for their broadcasts. */
  async syncTo(version: number): Promise<void> {
    while (getSyncedVersion(this.state) < version) {
      const run = [];
      for (let v = getSyncedVersion(this.state) + 1; v <= version && this.inbox.has(v); v++) {
        const u = this.inbox.get(v)!;
        this.inbox.delete(v);
        const changes = ChangeSet.of(u.changes, this.authorityLength, "\n");
        this.authorityLength = changes.newLength;
        run.push({ changes, clientID: u.clientID });
      }
      if (run.length) this.state = receiveUpdates(this.state, run).state;
      else await new Promise<void>((r) => (this.wake = r));
    }
  }

  edit(patches: [number, number, string][]): void {
    let changes = ChangeSet.empty(this.state.doc.length);
    for (const [pos, del, ins] of patches) {
      const step = ChangeSet.of({ from: pos, to: pos + del, insert: ins }, changes.newLength, "\n");
      changes = changes.compose(step);
    }
    this.state = this.state.update({ changes }).state;
  }

  /** Pushes every unconfirmed update at the synced version; resolves with the ack's version and what was sent. */
  async push(epoch: string): Promise<{ version: number; base: number; sent: number }> {
    const updates = sendableUpdates(this.state).map((u) => ({ clientID: u.clientID, changes: changesToWire(u.changes) }));
    const base = getSyncedVersion(this.state);
    const ack = await emitAck(this.socket, "insert_value", { epoch, version: base, updates });
    if (!ack.ok) throw new Error(`push refused: ${JSON.stringify(ack.error)}`);
    return { version: ack.version, base, sent: updates.length };
  }
}

let backend: ServersOnRedis;
before(async () => {
  backend = await startServersOnRedis(2, { RATE_LIMIT_EVENTS: "1000000" /* replays type faster than people */ });
});
after(async () => {
  await backend?.stop();
});

test("clownschool: three concurrent authors on two processes converge to endContent", { timeout: 240_000 }, async (t) => {
  const trace = loadTrace<ConcurrentTrace>("clownschool.json.gz");
  const points = syncPoints(trace);
  const token = "tmp-clownschool";
  const agents: Agent[] = [];
  let epoch = "";
  for (let a = 0; a < trace.numAgents; a++) {
    const { socket, connected } = await connectSocket(backend.servers[a % 2]!.url, token, ["websocket"]);
    epoch = connected.epoch;
    agents.push(new Agent(socket, `agent-${a}`));
  }
  let rebased = 0;
  let resent = 0;
  try {
    for (let i = 0; i < trace.txns.length; i++) {
      const txn = trace.txns[i]!;
      const agent = agents[txn.agent]!;
      await agent.syncTo(points[i]!);
      agent.edit(txn.patches);
      const pushed = await agent.push(epoch);
      assert.equal(pushed.version, i + 1, `transaction ${i} commits as version ${i + 1}`);
      // Every push commits one new update; the others it carries were already accepted.
      if (pushed.sent > 1) resent++;
      // Its base is behind updates of other authors it had not seen: the server rebased it.
      if (pushed.base + pushed.sent - 1 < i) rebased++;
    }
    t.diagnostic(`${rebased} pushes rebased over unseen updates, ${resent} carried already-accepted updates`);
    assert.ok(rebased > 0, "no push was rebased: the replay was not concurrent");
    assert.ok(resent > 0, "no push resent an accepted update: deduplication was not exercised");
    for (const agent of agents) {
      await agent.syncTo(trace.txns.length);
      assert.equal(sendableUpdates(agent.state).length, 0);
      assert.equal(agent.state.doc.toString(), trace.endContent);
    }
    assert.equal(await backend.redis.client().hget(token, "code"), trace.endContent);
  } finally {
    for (const agent of agents) agent.socket.close();
  }
});
