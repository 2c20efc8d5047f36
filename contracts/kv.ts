/**
 * Respawn's JetStream KV buckets (the gateway's `respawn_tg_messages`, `lease.ts`'s KV leases),
 * made and read with the JetStream API in KV's own layout (`nats kv get <bucket> <key>` reads
 * them; the `@nats-io/kv` package is not a dependency): stream `KV_<bucket>`, one value per
 * key, file storage, direct gets, a value's age limited by the bucket's `max_age`.
 */
import {
  DiscardPolicy,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import type { z } from 'zod';
import { JsPublishError, type JsPublisher } from './js-publish.ts';
import { parseJson } from './message.ts';

export const kvStream = (bucket: string): string => `KV_${bucket}`;
export const kvSubject = (bucket: string, key: string): string => `$KV.${bucket}.${key}`;

/**
 * Creates the bucket if it is missing. With `keepTtl: false`, an existing bucket whose
 * `max_age` differs is brought to `ttlMs` (a lease's time to live must be the one in force).
 */
export async function ensureKvBucket(
  jsm: JetStreamManager,
  b: { bucket: string; description: string; ttlMs: number; keepTtl?: boolean },
): Promise<void> {
  const name = kvStream(b.bucket);
  const maxAge = nanos(b.ttlMs);
  const duplicateWindow = nanos(Math.min(b.ttlMs, 2 * 60 * 1000));
  try {
    const info = await jsm.streams.info(name);
    if (b.keepTtl === false && info.config.max_age !== maxAge) {
      await jsm.streams.update(name, { max_age: maxAge, duplicate_window: duplicateWindow });
    }
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.StreamNotFound)) {
      throw err;
    }
    // Two gateways starting together both add it; an identical add is a no-op.
    await jsm.streams.add({
      name,
      subjects: [`$KV.${b.bucket}.>`],
      description: b.description,
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      discard: DiscardPolicy.New,
      max_msgs_per_subject: 1,
      max_age: maxAge,
      duplicate_window: duplicateWindow,
      allow_rollup_hdrs: true,
      deny_delete: true,
      deny_purge: false,
      allow_direct: true,
      num_replicas: 1,
    });
  }
}

/** A key's last entry: its sequence, and its value unless deleted (empty) or unreadable. */
export interface KvEntry<T> {
  seq: number;
  deleted: boolean;
  value: T | undefined;
}

export async function readKv<T>(
  js: JsPublisher,
  bucket: string,
  key: string,
  schema: z.ZodType<T>,
): Promise<KvEntry<T> | undefined> {
  const m = await js.lastBySubject(kvStream(bucket), kvSubject(bucket, key));
  if (m === undefined) return undefined;
  if (m.data.length === 0) return { seq: m.seq, deleted: true, value: undefined };
  let json: unknown;
  try {
    json = parseJson(m.data);
  } catch {
    return { seq: m.seq, deleted: false, value: undefined };
  }
  const r = schema.safeParse(json);
  return { seq: m.seq, deleted: false, value: r.success ? r.data : undefined };
}

/** A write with an expected last sequence found another: the key moved on (or never was). */
export function isWrongLastSequence(err: unknown): boolean {
  return err instanceof JsPublishError && err.apiCode === JetStreamApiCodes.StreamWrongLastSequence;
}
