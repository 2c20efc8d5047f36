/**
 * What a dead letter carries, built in one place for every consumer that dead-letters a
 * delivery itself (the ingress routers, the gateway's Telegram sender and Razorpay effects): the
 * original payload and headers, the original's message id as `Respawn-Dlq-Msg-Id` (so the dead
 * letter gets its own), and why, where from and by whom. `npm run dlq` reads and re-injects them.
 */
import type { JsMsg } from '@nats-io/jetstream';
import { headers as natsHeaders, type MsgHdrs } from '@nats-io/transport-node';
import { HeaderNames } from './headers.ts';

/** A delivery's headers as a plain record. */
export function headerRecord(m: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.headers === undefined) return out;
  for (const k of m.headers.keys()) out[k] = m.headers.get(k);
  return out;
}

export interface DeadLetterWhy {
  /** A stable error code, e.g. `invalid_payload`. */
  code: string;
  /** Why, for a person; cut to 1,000 characters. */
  reason: string;
  /** Who dead-lettered it, e.g. `ingress-telegram`, `gateway`. */
  actor: string;
}

/** The headers of the dead letter of `m`: its own, plus the `Respawn-Dlq-*` ones. */
export function deadLetterHeaders(
  m: JsMsg,
  original: Record<string, string>,
  why: DeadLetterWhy,
): MsgHdrs {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(original)) {
    if (k === HeaderNames.msgId) h.set(HeaderNames.dlqMsgId, v);
    else h.set(k, v);
  }
  h.set(HeaderNames.dlqCode, why.code);
  h.set(HeaderNames.dlqReason, why.reason.slice(0, 1000));
  h.set(HeaderNames.dlqSubject, m.subject);
  h.set(HeaderNames.dlqStream, m.info.stream);
  h.set(HeaderNames.dlqStreamSeq, String(m.seq));
  h.set(HeaderNames.dlqDeliveries, String(m.info.deliveryCount));
  h.set(HeaderNames.dlqActor, why.actor);
  return h;
}
