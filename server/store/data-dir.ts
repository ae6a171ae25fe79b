/**
 * The data folder of the embedded in-memory store (`DATA_DIR`): one JSON file per codespace,
 * `<sha256 of the codespace id>.json`, holding `SavedCodespace`. Every write is atomic (a temporary
 * file in the same folder, then `rename`), so a crash leaves either the old or the new file, never a
 * torn one; leftover temporary files are removed at start.
 */
import { createHash } from "node:crypto";
import { mkdir, readdir, readFile, rename, rm, unlink, writeFile } from "node:fs/promises";
import { join, resolve } from "node:path";
import lockfile from "proper-lockfile";
import type { WireUpdate } from "../protocol/events.js";

/** One codespace as written to disk. */
export interface SavedCodespace {
  codespace: string;
  epoch: string;
  version: number;
  code: string;
  /** The kept history; history[i] produced version `version - history.length + 1 + i`. */
  history: WireUpdate[];
  /** When the TTL runs out, milliseconds since the epoch (Date.now()). */
  expiresAt: number;
  /** Durable-save bookkeeping of the in-memory store (store/memory-store.ts), when saves are on. */
  save?: { dirtySince?: number; touchedAt?: number; ttlSeconds?: number; savedVersion?: number; attempts?: number };
}

/** The data folder cannot be created, read or written (a startup failure: one line, exit 1). */
export class DataDirError extends Error {
  override name = "DataDirError";
}

const SUFFIX = ".json";
const TMP_MARK = ".tmp-";

function isSaved(v: unknown): v is SavedCodespace {
  const r = v as Partial<SavedCodespace> | null;
  return (
    typeof r === "object" && r !== null &&
    typeof r.codespace === "string" && typeof r.epoch === "string" && typeof r.code === "string" &&
    Number.isSafeInteger(r.version) && Array.isArray(r.history) && typeof r.expiresAt === "number"
  );
}

/**
 * How often the holder refreshes its lock, after how long a lock not refreshed is stale (its holder
 * crashed), and how long a starting process waits for a stale lock, milliseconds: a restart right
 * after a crash waits up to LOCK_STALE_MS for the dead holder's lock instead of failing.
 */
const LOCK_UPDATE_MS = 1000;
const LOCK_STALE_MS = 5000;
const LOCK_WAIT_MS = LOCK_STALE_MS + 2000;

export class DataDir {
  /** Absolute path of the folder. */
  readonly path: string;
  private seq = 0;
  private release: (() => Promise<void>) | undefined;

  /** @param dir folder path; relative paths are resolved against the working directory. */
  constructor(dir: string) {
    this.path = resolve(dir);
  }

  /**
   * Creates the folder if needed and proves it writable (writes, renames and removes a probe file);
   * removes temporary files left by a crash. @throws DataDirError
   */
  async prepare(): Promise<void> {
    try {
      await mkdir(this.path, { recursive: true });
      const probe = join(this.path, `${TMP_MARK}probe-${process.pid}`);
      await writeFile(probe, "");
      await rename(probe, `${probe}-renamed`);
      await unlink(`${probe}-renamed`);
      for (const name of await readdir(this.path)) {
        if (name.includes(TMP_MARK)) await rm(join(this.path, name), { force: true });
      }
    } catch (err) {
      throw new DataDirError(`DATA_DIR ${this.path} is not a writable folder: ${(err as Error).message}`);
    }
  }

  /**
   * Takes the folder for this process (proper-lockfile: `DATA_DIR/.lock`, refreshed every second,
   * stale after 5 s, so a restart after a crash waits at most that long for the dead holder's lock). Two processes writing one folder would
   * each acknowledge edits the other's writes then overwrite, so a second one is refused.
   * @param onCompromised called if the lock is lost while running (the folder was taken over)
   * @throws DataDirError when another running process holds the folder
   */
  async lock(onCompromised: (err: Error) => void): Promise<void> {
    try {
      this.release = await lockfile.lock(this.path, {
        lockfilePath: join(this.path, ".lock"),
        realpath: false,
        update: LOCK_UPDATE_MS,
        stale: LOCK_STALE_MS,
        retries: { retries: Math.ceil(LOCK_WAIT_MS / 500), factor: 1, minTimeout: 500, maxTimeout: 500 },
        onCompromised,
      });
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === "ELOCKED") {
        throw new DataDirError(`DATA_DIR ${this.path} is in use by another running server (one process per data folder: stop the other one, or give this one its own DATA_DIR)`);
      }
      throw new DataDirError(`DATA_DIR ${this.path} cannot be locked: ${(err as Error).message}`);
    }
  }

  /** Gives the folder up (graceful shutdown). */
  async unlock(): Promise<void> {
    const release = this.release;
    this.release = undefined;
    await release?.().catch(() => {});
  }

  /**
   * Every saved codespace. A file that cannot be parsed is skipped and reported through `onBadFile`
   * (it is left in place for inspection). @throws DataDirError when the folder cannot be read.
   */
  async loadAll(onBadFile: (file: string, reason: string) => void = () => {}): Promise<SavedCodespace[]> {
    let names: string[];
    try {
      names = await readdir(this.path);
    } catch (err) {
      throw new DataDirError(`DATA_DIR ${this.path} cannot be read: ${(err as Error).message}`);
    }
    const out: SavedCodespace[] = [];
    for (const name of names) {
      if (!name.endsWith(SUFFIX) || name.includes(TMP_MARK)) continue;
      const file = join(this.path, name);
      try {
        const rec: unknown = JSON.parse(await readFile(file, "utf8"));
        if (!isSaved(rec)) throw new Error("not a saved codespace");
        out.push(rec);
      } catch (err) {
        onBadFile(file, (err as Error).message);
      }
    }
    return out;
  }

  /** Writes one codespace atomically (temporary file + rename); `json` is its `SavedCodespace` JSON. */
  async write(codespace: string, json: string): Promise<void> {
    const file = this.fileOf(codespace);
    const tmp = `${file}${TMP_MARK}${process.pid}-${++this.seq}`;
    try {
      await writeFile(tmp, json);
      await rename(tmp, file);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => {});
      throw err;
    }
  }

  /** Removes a codespace's file (absent: nothing to do). */
  async remove(codespace: string): Promise<void> {
    await rm(this.fileOf(codespace), { force: true });
  }

  private fileOf(codespace: string): string {
    return join(this.path, createHash("sha256").update(codespace).digest("hex") + SUFFIX);
  }
}
