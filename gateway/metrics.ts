/**
 * The gateway's metric names and label values, in one place. Metrics are registered on the
 * prom-client Registry the process passes in (no default registry), once per factory.
 */
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';

/** Where a webhook request came from. */
export const Sources = {
  telegram: 'telegram',
  razorpay: 'razorpay',
  agent: 'agent',
} as const;
export type Source = (typeof Sources)[keyof typeof Sources];

/** What became of an inbound request. */
export const Outcomes = {
  published: 'published',
  /** JetStream already had this Nats-Msg-Id: answered 2xx, stored once. */
  duplicate: 'duplicate',
  /** Accepted (2xx) on purpose without publishing: a spamming player, an unused update type. */
  dropped: 'dropped',
  rejected: 'rejected',
  /** NATS did not acknowledge: 503 so the sender retries. */
  unavailable: 'unavailable',
} as const;
export type Outcome = (typeof Outcomes)[keyof typeof Outcomes];

/** Why a request was rejected or dropped. */
export const Reasons = {
  badSecret: 'bad_secret',
  badSignature: 'bad_signature',
  badAgentToken: 'bad_agent_token',
  invalidJson: 'invalid_json',
  invalidBody: 'invalid_body',
  missingEventId: 'missing_event_id',
  bodyTooLarge: 'body_too_large',
  unsupportedMediaType: 'unsupported_media_type',
  ipRateLimited: 'ip_rate_limited',
  playerRateLimited: 'player_rate_limited',
  unknownUpdateType: 'unknown_update_type',
} as const;
export type Reason = (typeof Reasons)[keyof typeof Reasons];

export interface IngressMetrics {
  requests: Counter<'source' | 'outcome'>;
  rejections: Counter<'source' | 'reason'>;
  publishSeconds: Histogram<'source'>;
  rateLimitStoreErrors: Counter<'limit'>;
}

export function createIngressMetrics(registry: Registry): IngressMetrics {
  const registers = [registry];
  return {
    requests: new Counter({
      name: 'respawn_gateway_webhook_requests_total',
      help: 'Inbound requests by source and outcome',
      labelNames: ['source', 'outcome'],
      registers,
    }),
    rejections: new Counter({
      name: 'respawn_gateway_rejections_total',
      help: 'Inbound requests rejected or dropped, by source and reason',
      labelNames: ['source', 'reason'],
      registers,
    }),
    publishSeconds: new Histogram({
      name: 'respawn_gateway_publish_seconds',
      help: 'Time from publish to JetStream acknowledgement of an inbound message',
      labelNames: ['source'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    }),
    rateLimitStoreErrors: new Counter({
      name: 'respawn_gateway_ratelimit_store_errors_total',
      help: 'Rate-limit checks answered from process memory because Redis failed or was slow',
      labelNames: ['limit'],
      registers,
    }),
  };
}

/** What became of an out message. */
export const SendOutcomes = {
  sent: 'sent',
  edited: 'edited',
  /** Already sent before (a redelivery): acked without a second send. */
  duplicate: 'duplicate',
  deadLettered: 'dead_lettered',
  /** Dropped unsent: a newer message to its chat had the same collapseKey. */
  collapsed: 'collapsed',
  retried: 'retried',
  rateLimited: 'rate_limited',
} as const;
export type SendOutcome = (typeof SendOutcomes)[keyof typeof SendOutcomes];

export interface OutboundMetrics {
  sends: Counter<'outcome'>;
  sendSeconds: Histogram<'method'>;
  received: Counter;
}

/** 1 on the gateway holding the Telegram sender lease (sending), 0 on a standby. */
export function createSenderLeaseMetrics(registry: Registry): Gauge {
  return new Gauge({
    name: 'respawn_gateway_telegram_sender_active',
    help: '1 while this gateway holds the Telegram sender lease and sends, 0 while it stands by',
    registers: [registry],
  });
}

const outboundMetrics = new WeakMap<Registry, OutboundMetrics>();

/** One set per registry: a gateway that stands by and sends again makes a new sender. */
export function createOutboundMetrics(registry: Registry): OutboundMetrics {
  const made = outboundMetrics.get(registry);
  if (made !== undefined) return made;
  const registers = [registry];
  const metrics: OutboundMetrics = {
    sends: new Counter({
      name: 'respawn_gateway_telegram_out_total',
      help: 'Telegram out messages by outcome',
      labelNames: ['outcome'],
      registers,
    }),
    sendSeconds: new Histogram({
      name: 'respawn_gateway_telegram_call_seconds',
      help: 'Duration of Bot API calls made for out messages',
      labelNames: ['method'],
      buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    received: new Counter({
      name: 'respawn_gateway_telegram_out_received_total',
      help: 'Out messages received from JetStream (redeliveries included)',
      registers,
    }),
  };
  outboundMetrics.set(registry, metrics);
  return metrics;
}
