/**
 * A lease: which process plays a role that must have one player at a time (the Telegram
 * sender, a region's Azure effects runner; `leased-role.ts`). Every candidate competes for it;
 * the holder plays the role, the others stand by. The workers keep theirs in PostgreSQL
 * (actors/runtime/role-lease.ts); the gateway, which has no database, in NATS:
 *
 * `createKvLease` holds one key of a JetStream KV bucket. Taken with "no live value" as the expected last sequence, renewed with "my sequence" as the
 * expected one, and given back with a delete marker on the same condition, so two processes can
 * never both believe they hold it. The bucket's `max_age` is the lease's time to live: a holder
 * that stops renewing (crashed, frozen, cut off from NATS) loses the key that long after its
 * last renewal. Operators read it with `nats kv get <bucket> <key>`.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { createJsPublisher } from './js-publish.ts';
import { ensureKvBucket, isWrongLastSequence, kvSubject, readKv, type KvEntry } from './kv.ts';

const holding = z.object({ holder: z.string(), since: z.number(), renewedAt: z.number() });
type Holding = z.infer<typeof holding>;

export type AcquireResult =
  /**
   * `takenOver`: another process gave the lease back moments ago (it may have been working
   * until then); false when nobody held it for at least a time to live, or it was this one's.
   */
  { acquired: true; takenOver: boolean } | { acquired: false; heldBy: string };

export interface Lease {
  /** Makes what the lease is kept in, if it needs making. */
  ensure(): Promise<void>;
  /** Takes the key if nobody holds it. */
  acquire(): Promise<AcquireResult>;
  /** Extends a held lease; false when it was lost (expired, maybe taken). Throws when NATS does not answer. */
  renew(): Promise<boolean>;
  /** Gives a held lease back at once, so a standby need not wait for it to expire. */
  release(): Promise<void>;
  close(): void;
}

export interface KvLeaseOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  bucket: string;
  key: string;
  /** The bucket's description, for operators. */
  description: string;
  /** Who asks: shown to operators (host name and process). */
  holder: string;
  ttlMs: number;
  /** Clock for the values (wall time, ms). */
  now?: () => number;
}

export function createKvLease(opts: KvLeaseOptions): Lease {
  const js = createJsPublisher(opts.nc);
  const now = opts.now ?? Date.now;
  const subject = kvSubject(opts.bucket, opts.key);
  let seq: number | undefined;
  let since = 0;

  const encode = (h: Holding): Uint8Array => Buffer.from(JSON.stringify(h));
  const read = (): Promise<KvEntry<Holding> | undefined> =>
    readKv(js, opts.bucket, opts.key, holding);
  /** Who holds it now; an unreadable value is still somebody's until it expires. */
  const heldBy = (e: KvEntry<Holding> | undefined): string | undefined =>
    e === undefined || e.deleted ? undefined : (e.value?.holder ?? '?');

  return {
    ensure: () =>
      ensureKvBucket(opts.jsm, {
        bucket: opts.bucket,
        description: opts.description,
        ttlMs: opts.ttlMs,
        keepTtl: false,
      }),

    async acquire() {
      const last = await read();
      const other = heldBy(last);
      if (other !== undefined && last?.seq !== seq) return { acquired: false, heldBy: other };
      const at = now();
      try {
        const ack = await js.publish(
          subject,
          encode({ holder: opts.holder, since: at, renewedAt: at }),
          { expectLastSubjectSequence: last?.seq ?? 0 },
        );
        // A delete marker outlives a release by the bucket's max_age; an expired value is gone.
        const takenOver = last?.deleted === true && last.seq !== seq;
        seq = ack.seq;
        since = at;
        return { acquired: true, takenOver };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // Another process took it between the read and the write.
        return { acquired: false, heldBy: heldBy(await read()) ?? '?' };
      }
    },

    async renew() {
      if (seq === undefined) return false;
      try {
        const ack = await js.publish(
          subject,
          encode({ holder: opts.holder, since, renewedAt: now() }),
          { expectLastSubjectSequence: seq },
        );
        seq = ack.seq;
        return true;
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        seq = undefined;
        return false;
      }
    },

    async release() {
      if (seq === undefined) return;
      const h = natsHeaders();
      h.set('KV-Operation', 'DEL');
      try {
        await js.publish(subject, new Uint8Array(0), {
          expectLastSubjectSequence: seq,
          headers: h,
        });
      } catch (err) {
        // Expired already (and maybe taken): nothing of ours to give back.
        if (!isWrongLastSequence(err)) throw err;
      } finally {
        seq = undefined;
      }
    },

    close: () => js.close(),
  };
}
