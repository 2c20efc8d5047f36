/**
 * The Razorpay ingress router: webhooks the gateway verified and stored raw on
 * `respawn.in.razorpay` become `billing.payment_event.v1` on the player's billing subject.
 * It is the pure route of razorpay-route.ts on the shared ingress host (router.ts): what it
 * cannot use goes to `respawn.dlq.razorpay.<code>` with the original body, headers and a
 * reason; it never crashes on input and never credits anything itself.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  BillingPaymentEvent,
  RAZORPAY_INGRESS_CONSUMER,
  TerminalError,
  type ErrorCode,
} from '../../contracts/index.ts';
import { routeRazorpayWebhook } from './razorpay-route.ts';
import {
  createIngressRouter,
  type DeadLetterCounter,
  type IngressRoute,
  type IngressRouter,
} from './router.ts';

export interface RazorpayIngressOptions {
  nc: NatsConnection;
  log: Logger;
  /** Delay before a message whose publish failed is offered again. */
  retryDelayMs?: number;
  deadLetters?: DeadLetterCounter;
}

export type RazorpayIngress = IngressRouter;

export function createRazorpayIngress(opts: RazorpayIngressOptions): RazorpayIngress {
  return createIngressRouter({
    nc: opts.nc,
    log: opts.log,
    source: 'razorpay',
    durable: RAZORPAY_INGRESS_CONSUMER,
    ...(opts.retryDelayMs === undefined ? {} : { retryDelayMs: opts.retryDelayMs }),
    ...(opts.deadLetters === undefined ? {} : { deadLetters: opts.deadLetters }),
    route: razorpayRoute,
  });
}

/** The router's route: a webhook to billing's payment event, or a dead letter with its reason. */
export const razorpayRoute: IngressRoute = (data, ctx) => {
  const r = routeRazorpayWebhook(data, ctx.msgId);
  if (r.kind === 'dead') throw new TerminalError(r.code as ErrorCode, r.reason);
  return [{ subject: r.subject, data: r.data, msgId: r.msgId, type: BillingPaymentEvent.type }];
};
