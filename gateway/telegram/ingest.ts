/**
 * One authenticated Telegram update → RESPAWN_IN, the same for the webhook and long polling:
 * parse the envelope, drop types the bot does not use and players over their limit (both
 * answered as accepted, so Telegram does not retry them), publish the raw bytes unchanged with
 * Nats-Msg-Id `tg-<update_id>`. A pressed button, stored or dropped, is to be answered
 * (`callbackAnswer`), so it never keeps spinning.
 */
import type { Logger } from 'pino';
import { IngressSources } from '../../contracts/index.ts';
import { Outcomes, Reasons, Sources, type IngressMetrics, type Reason } from '../metrics.ts';
import type { IngressPublisher } from '../publish.ts';
import type { RateLimits } from '../ratelimit.ts';
import { parseUpdate, updateMsgId } from './update.ts';

export type IngestResult =
  | { kind: 'published'; duplicate: boolean; updateId: number; callbackQueryId?: string }
  | {
      kind: 'dropped';
      reason: Reason;
      updateId: number;
      callbackQueryId?: string;
      /** Over the per-player limit: seconds until the player's window lets them in again. */
      retryAfterS?: number;
    }
  | { kind: 'invalid'; reason: Reason; message: string }
  | { kind: 'unavailable'; message: string };

export type TelegramIngest = (raw: Buffer) => Promise<IngestResult>;

/** The parameters of `answerCallbackQuery` (Bot API names) for a pressed button. */
export interface CallbackAnswer {
  callback_query_id: string;
  /** Shown to the player as a brief notification at the top of the chat. */
  text?: string;
}

/** What a player pressing buttons too fast is told, instead of a button that spins. */
export function slowDownText(retryAfterS: number | undefined): string {
  return retryAfterS === undefined
    ? 'Slow down a little… try again in a few seconds.'
    : `Slow down a little… try again in ${retryAfterS} s.`;
}

/**
 * How to answer the button pressed in this update, if it was one and it was stored or
 * deliberately dropped (an update not stored is answered when Telegram delivers it again).
 */
export function callbackAnswer(r: IngestResult): CallbackAnswer | undefined {
  if (r.kind === 'published' && r.callbackQueryId !== undefined) {
    return { callback_query_id: r.callbackQueryId };
  }
  if (r.kind === 'dropped' && r.callbackQueryId !== undefined) {
    return r.reason === Reasons.playerRateLimited
      ? { callback_query_id: r.callbackQueryId, text: slowDownText(r.retryAfterS) }
      : { callback_query_id: r.callbackQueryId };
  }
  return undefined;
}

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
      return {
        kind: 'dropped',
        reason: Reasons.unknownUpdateType,
        updateId,
        ...(callbackQueryId === undefined ? {} : { callbackQueryId }),
      };
    }
    const verdict = fromId === undefined ? undefined : await deps.limits.player(fromId);
    if (verdict !== undefined && !verdict.allowed) {
      // Answered 200: a 429 would make Telegram redeliver the flood later.
      count(Outcomes.dropped, Reasons.playerRateLimited);
      log.debug({ updateId, player: fromId }, 'player over the rate limit; update dropped');
      return {
        kind: 'dropped',
        reason: Reasons.playerRateLimited,
        updateId,
        retryAfterS: verdict.retryAfterS,
        ...(callbackQueryId === undefined ? {} : { callbackQueryId }),
      };
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
