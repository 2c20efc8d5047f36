/**
 * Which queued out message makes another pointless: an answer the player can ask for again
 * carries a `collapseKey`, and while it waits for its chat's turn, a later message of the same
 * chat with the same key answers the same question newer.
 */

interface Queued {
  send: { collapseKey?: string };
}

/**
 * The newest entry after `entry` in its chat's `queue` with `entry`'s collapseKey, if any.
 * Entries before it never count: they are older.
 */
export function supersededBy<E extends Queued>(queue: readonly E[], entry: E): E | undefined {
  const key = entry.send.collapseKey;
  if (key === undefined) return undefined;
  for (let i = queue.length - 1; i >= 0; i--) {
    const e = queue[i]!;
    if (e === entry) return undefined;
    if (e.send.collapseKey === key) return e;
  }
  return undefined;
}
