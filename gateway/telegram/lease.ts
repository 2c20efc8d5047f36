/**
 * The Telegram sender's lease: which gateway sends. One chat's messages must go out from one
 * process (its pacing and its order live there), so every gateway with `TELEGRAM_OUTBOUND`
 * competes for one key, and only the holder consumes RESPAWN_OUT; the others stand by.
 *
 * The key is `holder` in the JetStream KV bucket `respawn_tg_sender` (readable with
 * `nats kv get respawn_tg_sender holder`). It is taken with "no live value" as the expected
 * last sequence, renewed with "my sequence" as the expected one, and given back with a delete
 * marker on the same condition, so two gateways can never both believe they hold it. The
 * bucket's `max_age` is the lease's time to live: a holder that stops renewing (crashed,
 * frozen, cut off from NATS) loses the key that long after its last renewal, and a standby
 * takes it.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import { createJsPublisher } from '../../contracts/index.ts';
import { ensureKvBucket, isWrongLastSequence, kvSubject, readKv } from './kv-bucket.ts';

export const SENDER_BUCKET = 'respawn_tg_sender';
const KEY = 'holder';
const SUBJECT = kvSubject(SENDER_BUCKET, KEY);

const holding = z.object({ holder: z.string(), since: z.number(), renewedAt: z.number() });
export type Holding = z.infer<typeof holding>;

export type AcquireResult = { acquired: true } | { acquired: false; heldBy: string };

export interface SenderLease {
  /** Creates the bucket (or sets its time to live to this lease's). */
  ensure(): Promise<void>;
  /** Takes the key if nobody holds it. */
  acquire(): Promise<AcquireResult>;
  /** Extends a held lease; false when it was lost (expired, and maybe taken). Throws when NATS does not answer. */
  renew(): Promise<boolean>;
  /** Gives a held lease back at once, so a standby need not wait for it to expire. */
  release(): Promise<void>;
  close(): void;
}

export interface SenderLeaseOptions {
  nc: NatsConnection;
  jsm: JetStreamManager;
  /** Who asks: shown to operators (host name and process). */
  holder: string;
  ttlMs: number;
  /** Clock for the values (wall time, ms). */
  now?: () => number;
}

export function createSenderLease(opts: SenderLeaseOptions): SenderLease {
  const js = createJsPublisher(opts.nc);
  const now = opts.now ?? Date.now;
  let seq: number | undefined;
  let since = 0;

  const encode = (h: Holding): Uint8Array => Buffer.from(JSON.stringify(h));
  /** Who holds it now; an unreadable value is still somebody's until it expires. */
  const heldBy = (e: { deleted: boolean; value: Holding | undefined } | undefined) =>
    e === undefined || e.deleted ? undefined : (e.value?.holder ?? '?');

  return {
    ensure: () =>
      ensureKvBucket(opts.jsm, {
        bucket: SENDER_BUCKET,
        description: 'Gateway: which gateway sends Telegram messages (a lease, max_age its TTL)',
        ttlMs: opts.ttlMs,
        keepTtl: false,
      }),

    async acquire() {
      const last = await readKv(js, SENDER_BUCKET, KEY, holding);
      const other = heldBy(last);
      if (other !== undefined && last?.seq !== seq) return { acquired: false, heldBy: other };
      const at = now();
      try {
        const ack = await js.publish(
          SUBJECT,
          encode({ holder: opts.holder, since: at, renewedAt: at }),
          { expectLastSubjectSequence: last?.seq ?? 0 },
        );
        seq = ack.seq;
        since = at;
        return { acquired: true };
      } catch (err) {
        if (!isWrongLastSequence(err)) throw err;
        // Another gateway took it between the read and the write.
        return {
          acquired: false,
          heldBy: heldBy(await readKv(js, SENDER_BUCKET, KEY, holding)) ?? '?',
        };
      }
    },

    async renew() {
      if (seq === undefined) return false;
      try {
        const ack = await js.publish(
          SUBJECT,
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
        await js.publish(SUBJECT, new Uint8Array(0), {
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
