/** Types of `cluster-key-slot` (no bundled types): Redis Cluster's CRC16 slot of a key, hash tags included. */
declare module "cluster-key-slot" {
  /** Slot (0..16383) of `key`, or of the content of its first non-empty `{...}` hash tag. */
  function calculateSlot(key: string | Buffer): number;
  export default calculateSlot;
}
