/**
 * Name of a codespace's commit-feed channel. On a Redis Cluster the commit script SPUBLISHes it
 * (sharded pub/sub), which must stay in the slot of the codespace key so that a commit costs one
 * shard: the channel is `{<tag>}codespace-feed:<key>` where `<tag>` hashes like the key.
 *
 * Redis Cluster hashes only the content of a key's first `{...}` with non-empty content (its hash
 * tag), else the whole key (https://redis.io/docs/latest/operate/oss_and_stack/reference/cluster-spec/#hash-tags).
 * So `<tag>` is the key's hash tag when it has one, else the key itself; and when that contains a
 * `}` (a key like `a}b` or `a{}b` has no hash tag and cannot be wrapped in braces), `<tag>` is a
 * short string chosen to have the key's slot. The key at the end keeps channels distinct.
 * On one Redis the same names are used with PUBLISH.
 */
import calculateSlot from "cluster-key-slot";

const SUFFIX = "codespace-feed:";

/** Redis Cluster slot (0..16383) of a key, hash tags included (cluster-key-slot, the function ioredis uses). */
export const keySlot: (key: string) => number = calculateSlot;

/** The part of `key` Redis Cluster hashes (its hash tag's content, or the whole key). */
export function hashedPart(key: string): string {
  const open = key.indexOf("{");
  if (open >= 0) {
    const close = key.indexOf("}", open + 1);
    if (close > open + 1) return key.slice(open + 1, close);
  }
  return key;
}

const tagsBySlot = new Map<number, string>();

/** A short brace-free string whose slot is `slot` (found by counting; cached). */
function tagForSlot(slot: number): string {
  let tag = tagsBySlot.get(slot);
  for (let i = 0; tag === undefined; i++) if (calculateSlot(`s${i}`) === slot) tag = `s${i}`;
  tagsBySlot.set(slot, tag);
  return tag;
}

/** The commit-feed channel of the codespace stored under `key`; always in `key`'s slot. */
export function feedChannel(key: string): string {
  const part = hashedPart(key);
  const tag = part.includes("}") ? tagForSlot(calculateSlot(key)) : part;
  return `{${tag}}${SUFFIX}${key}`;
}
