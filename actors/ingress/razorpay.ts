/**
 * The Razorpay ingress router: a durable consumer of `respawn.in.razorpay` (webhooks the
 * gateway verified and stored raw) that turns each into `billing.payment_event.v1` on the
 * player's billing subject. What it cannot use goes to `respawn.dlq.razorpay.<code>` with the
 * original body and headers and a reason; it is acked only once that is stored. It never
 * crashes on input, and never credits anything itself.
 */
import {
  jetstream,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  type ConsumerMessages,
  type JetStreamClient,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  BillingPaymentEvent,
  HeaderNames,
  Streams,
  razorpayDlqSubject,
  razorpayIngressConsumer,
} from '../../contracts/index.ts';
import { routeRazorpayWebhook } from './razorpay-route.ts';

export interface RazorpayIngressOptions {
  nc: NatsConnection;
  log: Logger;
  /** Delay before a message whose publish failed is offered again. */
  retryDelayMs?: number;
}

export interface RazorpayIngress {
  start(): Promise<void>;
  /** Stops pulling and finishes the message in hand; safe to call twice. */
  stop(): Promise<void>;
}

/** Creates the durable consumer, or updates what may change on an existing one. */
export async function ensureRazorpayIngressConsumer(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const cfg = razorpayIngressConsumer();
  try {
    await jsm.consumers.info(Streams.ingress.name, cfg.durable_name);
    await jsm.consumers.update(Streams.ingress.name, cfg.durable_name, {
      description: cfg.description,
      ack_wait: cfg.ack_wait,
      max_ack_pending: cfg.max_ack_pending,
    });
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) {
      throw err;
    }
    // Another router may create it at the same moment: adding the same config is idempotent.
    await jsm.consumers.add(Streams.ingress.name, cfg);
  }
}

function headerRecord(m: JsMsg): Record<string, string> {
  const out: Record<string, string> = {};
  if (m.headers === undefined) return out;
  for (const k of m.headers.keys()) out[k] = m.headers.get(k);
  return out;
}

async function deadLetter(
  js: JetStreamClient,
  m: JsMsg,
  original: Record<string, string>,
  code: string,
  reason: string,
): Promise<void> {
  const h = natsHeaders();
  for (const [k, v] of Object.entries(original)) {
    if (k === HeaderNames.msgId) h.set(HeaderNames.dlqMsgId, v);
    else h.set(k, v);
  }
  h.set(HeaderNames.dlqCode, code);
  h.set(HeaderNames.dlqReason, reason.slice(0, 1000));
  h.set(HeaderNames.dlqSubject, m.subject);
  h.set(HeaderNames.dlqStream, m.info.stream);
  h.set(HeaderNames.dlqStreamSeq, String(m.seq));
  h.set(HeaderNames.dlqDeliveries, String(m.info.deliveryCount));
  h.set(HeaderNames.dlqActor, 'ingress-razorpay');
  // One dead letter per stored webhook, however often it is redelivered.
  await js.publish(razorpayDlqSubject(code), m.data, {
    msgID: `dlq-${m.info.stream}-${m.seq}`,
    headers: h,
  });
}

export function createRazorpayIngress(opts: RazorpayIngressOptions): RazorpayIngress {
  const log = opts.log.child({ component: 'ingress-razorpay' });
  const js = jetstream(opts.nc);
  const retryDelayMs = opts.retryDelayMs ?? 2_000;
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  async function handle(m: JsMsg): Promise<void> {
    const original = headerRecord(m);
    const ingressId = original[HeaderNames.msgId];
    const mlog = log.child({
      subject: m.subject,
      msgId: ingressId,
      streamSeq: m.seq,
      deliveryCount: m.info.deliveryCount,
    });
    const r = routeRazorpayWebhook(m.data, ingressId);
    try {
      if (r.kind === 'dead') {
        await deadLetter(js, m, original, r.code, r.reason);
        mlog.warn({ code: r.code, reason: r.reason }, 'razorpay webhook dead-lettered');
        m.term();
        return;
      }
      const h = natsHeaders();
      h.set(HeaderNames.type, BillingPaymentEvent.type);
      if (ingressId !== undefined) h.set(HeaderNames.causationId, ingressId);
      const tp = original[HeaderNames.traceparent];
      if (tp !== undefined) h.set(HeaderNames.traceparent, tp);
      const ack = await js.publish(r.subject, r.data, { msgID: r.msgId, headers: h });
      mlog.info(
        {
          player: r.playerId,
          event: r.event,
          paymentId: r.message.paymentId,
          duplicate: ack.duplicate,
        },
        'razorpay webhook routed to billing',
      );
      m.ack();
    } catch (err) {
      mlog.warn({ err }, 'razorpay webhook not forwarded; will retry');
      m.nak(retryDelayMs);
    }
  }

  return {
    async start() {
      await ensureRazorpayIngressConsumer(opts.nc);
      const c = await js.consumers.get(
        Streams.ingress.name,
        razorpayIngressConsumer().durable_name,
      );
      messages = await c.consume({ max_messages: 16, expires: 5_000 });
      const iter = messages;
      loop = (async () => {
        for await (const m of iter) await handle(m);
      })().catch((err: unknown) => log.error({ err }, 'razorpay ingress loop ended'));
      log.info('razorpay ingress started');
    },
    stop() {
      stopped ??= (async () => {
        await messages?.close();
        await loop;
        log.info('razorpay ingress stopped');
      })();
      return stopped;
    },
  };
}
