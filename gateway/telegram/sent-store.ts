/**
 * What the gateway remembers about Telegram sends, in a JetStream KV bucket
 * (`respawn_tg_messages`, file storage, one value per key), not Redis: Redis here runs without
 * persistence (it only holds rate-limit counters), and forgetting these records on a restart
 * would turn a redelivery into a second message. The bucket is readable with
 * `nats kv get respawn_tg_messages <key>`.
 *
 * - `sent.<out msg id>` → what became of an out message: the Telegram message it was sent
 *   as, or that it was dead-lettered. Written with a "must not exist" revision check, so two
 *   gateways racing on one message are detected.
 * - `edit.<chat>.<editKey>` → the message later sends with that editKey edit in place.
 *
 * Keys are base64url-encoded where they come from senders (ids, editKeys may hold ':').
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import { z } from 'zod';
import {
  createJsPublisher,
  ensureKvBucket,
  isWrongLastSequence,
  kvSubject,
  readKv,
} from '../../contracts/index.ts';

export const SENT_BUCKET = 'respawn_tg_messages';
/** Longer than RESPAWN_OUT keeps messages (7 days), so any redelivery finds its record. */
export const SENT_TTL_MS = 8 * 24 * 60 * 60 * 1000;

const record = z.object({
  /**
   * `dead_lettered`: refused for good; `collapsed`: a newer answer with its collapseKey made it
   * pointless before it went out. A redelivery must not try either again.
   */
  outcome: z.enum(['sent', 'dead_lettered', 'collapsed']),
  chatId: z.string().optional(),
  messageId: z.number().int().optional(),
  at: z.number(),
});
export type SentRecord = z.infer<typeof record>;

export interface SentStore {
  ensure(): Promise<void>;
  /** How an out message was settled before (sent or dead-lettered), if it was. */
  settledFor(outMsgId: string): Promise<SentRecord | undefined>;
  /** 'existed' means another delivery recorded it first (a send was doubled). */
  recordSettled(outMsgId: string, rec: SentRecord): Promise<'created' | 'existed'>;
  editTarget(chatId: string, editKey: string): Promise<number | undefined>;
  setEditTarget(chatId: string, editKey: string, rec: SentRecord): Promise<void>;
  /** Fails what is in flight; the sender's stop calls it. */
  close(): void;
}

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64url');
const chatToken = (chatId: string): string => {
  if (!/^-?\d{1,20}$/.test(chatId)) throw new Error(`chat id ${chatId} is not numeric`);
  return chatId;
};
const sentKey = (id: string): string => `sent.${b64(id)}`;
const editKeyKey = (chatId: string, editKey: string): string =>
  `edit.${chatToken(chatId)}.${b64(editKey)}`;

export function createSentStore(deps: {
  nc: NatsConnection;
  jsm: JetStreamManager;
  ttlMs?: number;
}): SentStore {
  const encode = (rec: SentRecord): Uint8Array => Buffer.from(JSON.stringify(rec));
  // Two calls per Telegram send: through the shared-inbox publisher, not nats.js requests.
  const js = createJsPublisher(deps.nc);

  const read = async (key: string): Promise<SentRecord | undefined> =>
    (await readKv(js, SENT_BUCKET, key, record))?.value;

  return {
    ensure: () =>
      ensureKvBucket(deps.jsm, {
        bucket: SENT_BUCKET,
        description: 'Gateway: Telegram messages sent per out message and per editKey',
        ttlMs: deps.ttlMs ?? SENT_TTL_MS,
      }),
    settledFor: (outMsgId) => read(sentKey(outMsgId)),
    async recordSettled(outMsgId, rec) {
      try {
        await js.publish(kvSubject(SENT_BUCKET, sentKey(outMsgId)), encode(rec), {
          expectLastSubjectSequence: 0,
        });
        return 'created';
      } catch (err) {
        if (isWrongLastSequence(err)) return 'existed';
        throw err;
      }
    },
    async editTarget(chatId, editKey) {
      return (await read(editKeyKey(chatId, editKey)))?.messageId;
    },
    async setEditTarget(chatId, editKey, rec) {
      await js.publish(kvSubject(SENT_BUCKET, editKeyKey(chatId, editKey)), encode(rec));
    },
    close: () => js.close(),
  };
}
