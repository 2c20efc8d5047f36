/**
 * One authenticated Telegram update → RESPAWN_IN, the same for the webhook and long polling:
 * parse the envelope, drop types the bot does not use and players over their limit (both
 * answered as accepted, so Telegram does not retry them), publish the raw bytes unchanged with
 * Nats-Msg-Id `tg-<update_id>`.
 */
import type { Logger } from 'pino';
import { IngressSources } from '../../contracts/index.ts';
import { Outcomes, Reasons, Sources, type IngressMetrics, type Reason } from '../metrics.ts';
import type { IngressPublisher } from '../publish.ts';
import type { RateLimits } from '../ratelimit.ts';
import { parseUpdate, updateMsgId } from './update.ts';

export type IngestResult =
  | { kind: 'published'; duplicate: boolean; updateId: number; callbackQueryId?: string }
  | { kind: 'dropped'; reason: Reason; updateId: number }
  | { kind: 'invalid'; reason: Reason; message: string }
  | { kind: 'unavailable'; message: string };

export type TelegramIngest = (raw: Buffer) => Promise<IngestResult>;

export function createTelegramIngest(deps: {
  publish: IngressPublisher;
  limits: RateLimits;
  metrics: IngressMetrics;
  log: Logger;
  allowedUpdates: readonly string[];
}): TelegramIngest {
  const { metrics } = deps;
  const source = Sources.telegram;
  const allowed = new Set(deps.allowedUpdates);
  const log = deps.log.child({ source });

  function count(outcome: (typeof Outcomes)[keyof typeof Outcomes], reason?: Reason): void {
    metrics.requests.inc({ source, outcome });
    if (reason !== undefined) metrics.rejections.inc({ source, reason });
  }

  return async (raw) => {
    const parsed = parseUpdate(raw);
    if (!parsed.ok) {
      const reason = parsed.reason.includes('update_id')
        ? Reasons.invalidBody
        : Reasons.invalidJson;
      count(Outcomes.rejected, reason);
      log.warn({ reason, error: parsed.reason, bytes: raw.length }, 'telegram update rejected');
      return { kind: 'invalid', reason, message: parsed.reason };
    }
    const { updateId, type, fromId, callbackQueryId } = parsed.facts;
    if (!allowed.has(type)) {
      count(Outcomes.dropped, Reasons.unknownUpdateType);
      log.info({ updateId, type }, 'telegram update of an unused type dropped');
      return { kind: 'dropped', reason: Reasons.unknownUpdateType, updateId };
    }
    if (fromId !== undefined && !(await deps.limits.player(fromId))) {
      // Answered 200: a 429 would make Telegram redeliver the flood later.
      count(Outcomes.dropped, Reasons.playerRateLimited);
      log.debug({ updateId, player: fromId }, 'player over the rate limit; update dropped');
      return { kind: 'dropped', reason: Reasons.playerRateLimited, updateId };
    }
    const r = await deps.publish(IngressSources.telegram, raw, updateMsgId(updateId));
    if (!r.ok) {
      count(Outcomes.unavailable);
      log.warn({ updateId, error: r.reason }, 'telegram update not stored; Telegram will retry');
      return { kind: 'unavailable', message: r.reason };
    }
    count(r.duplicate ? Outcomes.duplicate : Outcomes.published);
    return {
      kind: 'published',
      duplicate: r.duplicate,
      updateId,
      ...(callbackQueryId === undefined ? {} : { callbackQueryId }),
    };
  };
}
