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
 *
 * Balance: each worker also holds a member lease per windowed kind it hosts
 * (`member.<kind>.<owner>`, renewed with the others). A worker takes free partitions only up to
 * its fair share, ceil(partitions / live members), and offers those beyond it back (`surplus`):
 * the caller stops pulling them, lets what it holds of them finish, then releases them, so
 * the next owner need not wait out ack_wait. Workers that join or die therefore end up
 * sharing a kind's partitions evenly instead of the first one holding them all.
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

export interface Tick {
  /** Newly owned: start pulling them. */
  taken: PartitionSlot[];
  /** Owned beyond the fair share: stop pulling them, then `release` each once drained. */
  surplus: PartitionSlot[];
}

export interface Ownership {
  readonly owner: string;
  /**
   * Renews the leases held and takes free or expired ones among `slots`, up to the fair share
   * of each kind. Slots found lost are reported through `onLost`.
   */
  tick(slots: readonly PartitionSlot[]): Promise<Tick>;
  owns(slot: PartitionSlot): boolean;
  /**
   * How long the leases held are still certainly ours, in ms by this process's clock: LEASE_MS
   * less the time since the last successful renewal began (≤ 0 when none is held).
   */
  leaseLeftMs(): number;
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

/** A worker's presence among those sharing a kind's windowed partitions. */
export function memberName(kind: ActorKind, owner: string): string {
  return `member.${kind}.${owner}`;
}

function hashOf(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) >>> 0;
  return h;
}

export function createOwnership(opts: {
  knex: Knex;
  log: Logger;
  /** Called with the slots this worker no longer owns. */
  onLost: (slots: PartitionSlot[]) => void;
}): Ownership {
  const owner = randomUUID();
  const owned = new Map<string, PartitionSlot>();
  /** Offered back (surplus), held until the caller releases them. */
  const releasing = new Set<string>();
  /** Each kind's fair share, from the last tick. */
  const shares = new Map<ActorKind, number>();
  let renewedAt = performance.now();
  let ticks = 0;

  /** The lease names to renew or take: those held, and free ones up to each kind's share. */
  function plan(
    kinds: readonly ActorKind[],
    byName: ReadonlyMap<string, PartitionSlot>,
    live: readonly { name: string; owner: string }[],
  ): string[] {
    const heldBy = new Map(live.map((r) => [r.name, r.owner]));
    const names = [...owned.keys()];
    for (const kind of kinds) {
      const mine = memberName(kind, owner);
      const others = live.filter(
        (r) => r.name.startsWith(`member.${kind}.`) && r.name !== mine,
      ).length;
      const all = [...byName.entries()].filter(([, s]) => s.kind === kind);
      const share = Math.ceil(all.length / (others + 1));
      shares.set(kind, share);
      const have = [...owned.values()].filter(
        (s) => s.kind === kind && !releasing.has(leaseName(s)),
      ).length;
      // Free ones, starting at a place of our own so that joiners do not all race for the same.
      const free = all.filter(([n]) => !owned.has(n) && !heldBy.has(n)).map(([n]) => n);
      const from = free.length === 0 ? 0 : hashOf(owner) % free.length;
      const rotated = [...free.slice(from), ...free.slice(0, from)];
      names.push(...rotated.slice(0, Math.max(0, share - have)));
    }
    return names;
  }

  /** Owned beyond each kind's share, not already offered back: the highest partitions first. */
  function surplusOf(
    kinds: readonly ActorKind[],
    byName: ReadonlyMap<string, PartitionSlot>,
  ): PartitionSlot[] {
    const out: PartitionSlot[] = [];
    for (const kind of kinds) {
      const keep = [...owned.entries()]
        .filter(([n, s]) => s.kind === kind && byName.has(n) && !releasing.has(n))
        .sort(([, a], [, b]) => a.partition - b.partition);
      const extra = keep.slice(shares.get(kind) ?? keep.length);
      for (const [n, s] of extra) {
        releasing.add(n);
        out.push(s);
      }
    }
    return out;
  }

  function lose(slots: PartitionSlot[], why: string): void {
    if (slots.length === 0) return;
    for (const s of slots) {
      owned.delete(leaseName(s));
      releasing.delete(leaseName(s));
    }
    opts.log.warn({ partitions: slots.map(leaseName), why }, 'partition ownership lost');
    opts.onLost(slots);
  }

  return {
    owner,
    async tick(slots) {
      const byName = new Map(slots.map((s) => [leaseName(s), s]));
      for (const [n, s] of owned) byName.set(n, s);
      const kinds = [...new Set([...byName.values()].map((s) => s.kind))];
      const members = kinds.map((k) => memberName(k, owner));
      let rows: { name: string }[];
      let wanted: string[];
      const started = performance.now();
      try {
        // Who else is here, and which partitions nobody holds now.
        const seen = await opts.knex.raw<{ rows: { name: string; owner: string }[] }>(
          `select name, owner from rt_lease
            where expires_at > now() and (name = any(?::text[]) or name like 'member.%')`,
          [[...byName.keys()]],
        );
        wanted = plan(kinds, byName, seen.rows);
        // Member leases of workers that died linger; sweep them now and then.
        if (++ticks % 60 === 0) {
          await opts.knex.raw(
            `delete from rt_lease where name like 'member.%' and expires_at < now() - interval '1 minute'`,
          );
        }
        // Insert a lease, or take it over when it is ours or has expired; return what we hold.
        const r = await opts.knex.raw<{ rows: { name: string }[] }>(
          `insert into rt_lease (name, owner, expires_at)
             select n, ?, now() + (? * interval '1 millisecond') from unnest(?::text[]) as n
           on conflict (name) do update
             set owner = excluded.owner, expires_at = excluded.expires_at
             where rt_lease.owner = excluded.owner or rt_lease.expires_at < now()
           returning name`,
          [owner, LEASE_MS, [...members, ...wanted]],
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
        const s = byName.get(n);
        if (s !== undefined && !owned.has(n)) {
          owned.set(n, s);
          taken.push(s);
        }
      }
      return { taken, surplus: surplusOf(kinds, byName) };
    },
    owns(slot) {
      return owned.has(leaseName(slot));
    },
    leaseLeftMs() {
      return owned.size === 0 ? 0 : LEASE_MS - (performance.now() - renewedAt);
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
      releasing.delete(n);
      if (!owned.delete(n)) return;
      await opts.knex('rt_lease').where({ name: n, owner }).delete();
    },
    async close() {
      const names = [...owned.keys(), ...[...shares.keys()].map((k) => memberName(k, owner))];
      owned.clear();
      releasing.clear();
      if (names.length === 0) return;
      await opts.knex('rt_lease').whereIn('name', names).andWhere({ owner }).delete();
    },
  };
}
