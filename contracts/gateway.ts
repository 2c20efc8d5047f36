/**
 * Names the gateway uses on the bus besides the ingress and out subjects: the durable consumer
 * that carries out Telegram sends, and where the gateway dead-letters what it cannot use.
 * The gateway is not an actor kind, so its dead letters live under `respawn.dlq.gateway.<code>`.
 */
import { AckPolicy, DeliverPolicy, type ConsumerConfig } from '@nats-io/jetstream';
import { nanos } from '@nats-io/transport-node';
import { ROOT, validToken } from './subjects.ts';

/** Not an ActorKind: the token of the gateway's dead letters. */
export const GATEWAY_DLQ_TOKEN = 'gateway';

/** Dead letters of the gateway, by reason: `nats sub 'respawn.dlq.gateway.>'`. */
export function gatewayDlqSubject(code: string): string {
  return `${ROOT}.dlq.${GATEWAY_DLQ_TOKEN}.${validToken(code, 'code')}`;
}

/** Every chat's Telegram sends, as a consumer filter. */
export function outTelegramFilter(): string {
  return `${ROOT}.out.telegram.*`;
}

export const TELEGRAM_OUT_CONSUMER = 'gateway-telegram-out';

/**
 * A send may wait behind a chat's pacing or a Telegram `retry_after`; the gateway extends
 * the ack while it waits, so this only bounds how long a dead gateway holds messages.
 */
export const TELEGRAM_OUT_ACK_WAIT_MS = 10_000;

/** The durable pull consumer of Telegram sends (stream RESPAWN_OUT). */
export function telegramOutConsumer(): Partial<ConsumerConfig> & { durable_name: string } {
  return {
    durable_name: TELEGRAM_OUT_CONSUMER,
    description: 'Gateway: Telegram sends, paced per chat and overall',
    filter_subject: outTelegramFilter(),
    ack_policy: AckPolicy.Explicit,
    deliver_policy: DeliverPolicy.All,
    ack_wait: nanos(TELEGRAM_OUT_ACK_WAIT_MS),
    max_ack_pending: 1000,
    max_deliver: -1,
    max_waiting: 512,
  };
}
