/**
 * The little the gateway reads of a Telegram update: its id (for de-duplication), its type
 * (to drop kinds the bot does not use) and who sent it (for the per-player limit). The update
 * itself is published unchanged; the router decodes it in full.
 */
import { z } from 'zod';
import { parseJson } from '../../contracts/index.ts';

const sender = z.object({ id: z.number().int() }).loose();

/** Update types carry their sender as `from` (messages, callbacks) or `user` (poll answers). */
const payload = z
  .object({
    from: sender.optional(),
    user: sender.optional(),
    /** A callback query's id: the gateway answers it so the button stops spinning. */
    id: z.string().min(1).max(256).optional(),
  })
  .loose();

const envelope = z
  .object({ update_id: z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER) })
  .catchall(z.unknown());

export interface UpdateFacts {
  updateId: number;
  /** The update's one field besides update_id; `unknown` when there is none. */
  type: string;
  /** Telegram user id of the sender, when the update has one. */
  fromId: string | undefined;
  /** Set for `callback_query` updates (a pressed inline button). */
  callbackQueryId: string | undefined;
}

export type ParsedUpdate = { ok: true; facts: UpdateFacts } | { ok: false; reason: string };

export function parseUpdate(raw: Uint8Array): ParsedUpdate {
  let json: unknown;
  try {
    json = parseJson(raw);
  } catch (err) {
    return { ok: false, reason: err instanceof Error ? err.message : String(err) };
  }
  const r = envelope.safeParse(json);
  if (!r.success) {
    return { ok: false, reason: 'update_id is missing or not a non-negative integer' };
  }
  const type = Object.keys(r.data).find((k) => k !== 'update_id') ?? 'unknown';
  const body = payload.safeParse(r.data[type]);
  const from = body.success ? (body.data.from ?? body.data.user) : undefined;
  return {
    ok: true,
    facts: {
      updateId: r.data.update_id,
      type,
      fromId: from === undefined ? undefined : String(from.id),
      callbackQueryId: type === 'callback_query' && body.success ? body.data.id : undefined,
    },
  };
}

/** The Nats-Msg-Id of an update: the same for a webhook delivery and a long-poll fetch. */
export function updateMsgId(updateId: number): string {
  return `tg-${updateId}`;
}
