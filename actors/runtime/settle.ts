/**
 * The one place a delivery is settled. Handlers return or throw; they never ack.
 * ok, duplicate, stale timer, parked (kept in its key's parking lot) → ack; dead-lettered (already in the outbox) → term;
 * retryable → nak with a delay (the error's own, or exponential backoff).
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { Outcome } from './rows.ts';

export interface Backoff {
  baseMs: number;
  maxMs: number;
}

export function backoffDelay(redeliveries: number, b: Backoff): number {
  const exp = Math.min(b.maxMs, b.baseMs * 2 ** Math.min(redeliveries, 20));
  // Jitter keeps retries of many keys after one outage from arriving in lockstep.
  return Math.round(exp / 2 + Math.random() * (exp / 2));
}

export function settle(m: JsMsg, outcome: Outcome, b: Backoff): void {
  switch (outcome.kind) {
    case 'ok':
    case 'duplicate':
    case 'stale_timer':
    case 'parked':
      m.ack();
      return;
    case 'dead':
      m.term();
      return;
    case 'retry':
      m.nak(outcome.delayMs ?? backoffDelay(m.info.deliveryCount - 1, b));
      return;
  }
}
