/**
 * The bot: Telegram updates (`respawn.in.telegram`) to session and billing commands and the
 * bot's replies, the pure `routeTelegramUpdate` hosted by the generic ingress router.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { createIngressRouter, type DeadLetterCounter, type IngressRouter } from './router.ts';
import { createTelegramRoute, type TelegramRouteOptions } from './telegram-route.ts';

export interface TelegramIngressOptions extends TelegramRouteOptions {
  nc: NatsConnection;
  log: Logger;
  /** Durable consumer name; defaults to `ingress-telegram`. */
  durable?: string;
  retryDelayMs?: number;
  deadLetters?: DeadLetterCounter;
}

export function createTelegramIngress(opts: TelegramIngressOptions): IngressRouter {
  const { nc, log, durable, retryDelayMs, deadLetters, ...route } = opts;
  return createIngressRouter({
    nc,
    log,
    source: 'telegram',
    ...(durable === undefined ? {} : { durable }),
    ...(retryDelayMs === undefined ? {} : { retryDelayMs }),
    ...(deadLetters === undefined ? {} : { deadLetters }),
    route: createTelegramRoute(route),
  });
}
