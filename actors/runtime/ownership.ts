/**
 * Ownership of windowed partitions (contracts/streams.ts PARTITION_WINDOWS). A partition
 * whose consumer hands out more than one delivery at a time must be pulled by one worker
 * only, or two workers would apply one key's messages side by side.
 *
 * The owner holds a lease row (rt_lease) that it renews every RENEW_MS; a lease not renewed
 * for LEASE_MS (the worker died, or is paused) can be taken by any other worker. Times are
 * PostgreSQL's own `now()`, so the workers' clocks (injected, possibly manual) do not matter.
 * A worker that cannot renew gives its partitions up once LEASE_MS has passed locally since
 * its last renewal, before anyone else can take them.
 *
 * The lease is for liveness and order, not for safety: state writes stay guarded by their
 * version (store.ts) and each message by the inbox, so a paused former owner that wakes up
 * cannot overwrite a newer state or apply a message twice.
 */
import { randomUUID } from 'node:crypto';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { ActorKind } from '../../contracts/index.ts';

export const LEASE_MS = 4_000;
export const RENEW_MS = 1_000;

export interface PartitionSlot {
  kind: ActorKind;
  partition: number;
}

export interface Ownership {
  readonly owner: string;
  /**
   * Renews the leases held and tries to take the free or expired ones among `slots`.
   * Returns the slots newly taken; slots found lost are reported through `onLost`.
   */
  tick(slots: readonly PartitionSlot[]): Promise<PartitionSlot[]>;
  owns(slot: PartitionSlot): boolean;
  /** Gives everything up when renewals have failed (or hung) for too long; cheap, call often. */
  checkExpiry(): void;
  /** Gives one lease up. */
  release(slot: PartitionSlot): Promise<void>;
  /** Gives every lease up (a graceful stop: the next owner need not wait for expiry). */
  close(): Promise<void>;
}

export function leaseName(slot: PartitionSlot): string {
  return `partition.${slot.kind}.${slot.partition}`;
}

export function createOwnership(opts: {
  knex: Knex;
  log: Logger;
  /** Called with the slots this worker no longer owns. */
  onLost: (slots: PartitionSlot[]) => void;
}): Ownership {
  const owner = randomUUID();
  const owned = new Map<string, PartitionSlot>();
  let renewedAt = performance.now();

  function lose(slots: PartitionSlot[], why: string): void {
    if (slots.length === 0) return;
    for (const s of slots) owned.delete(leaseName(s));
    opts.log.warn({ partitions: slots.map(leaseName), why }, 'partition ownership lost');
    opts.onLost(slots);
  }

  return {
    owner,
    async tick(slots) {
      const names = new Map(slots.map((s) => [leaseName(s), s]));
      for (const [n, s] of owned) names.set(n, s);
      let rows: { name: string }[];
      const started = performance.now();
      try {
        // Insert a lease, or take it over when it is ours or has expired; return what we hold.
        const r = await opts.knex.raw<{ rows: { name: string }[] }>(
          `insert into rt_lease (name, owner, expires_at)
             select n, ?, now() + (? * interval '1 millisecond') from unnest(?::text[]) as n
           on conflict (name) do update
             set owner = excluded.owner, expires_at = excluded.expires_at
             where rt_lease.owner = excluded.owner or rt_lease.expires_at < now()
           returning name`,
          [owner, LEASE_MS, [...names.keys()]],
        );
        rows = r.rows;
      } catch (err) {
        this.checkExpiry();
        throw err;
      }
      if (started > renewedAt) renewedAt = started;
      const held = new Set(rows.map((r) => r.name));
      lose(
        [...owned.entries()].filter(([n]) => !held.has(n)).map(([, s]) => s),
        'lease taken by another worker',
      );
      const taken: PartitionSlot[] = [];
      for (const n of held) {
        const s = names.get(n);
        if (s !== undefined && !owned.has(n)) {
          owned.set(n, s);
          taken.push(s);
        }
      }
      return taken;
    },
    owns(slot) {
      return owned.has(leaseName(slot));
    },
    checkExpiry() {
      // A renewal that began at renewedAt keeps the leases until renewedAt + LEASE_MS at
      // the earliest; give up a renewal period before that.
      if (owned.size > 0 && performance.now() - renewedAt >= LEASE_MS - RENEW_MS) {
        lose([...owned.values()], 'lease renewal failing');
      }
    },
    async release(slot) {
      const n = leaseName(slot);
      if (!owned.delete(n)) return;
      await opts.knex('rt_lease').where({ name: n, owner }).delete();
    },
    async close() {
      const names = [...owned.keys()];
      owned.clear();
      if (names.length === 0) return;
      await opts.knex('rt_lease').whereIn('name', names).andWhere({ owner }).delete();
    },
  };
}
