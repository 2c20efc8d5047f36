/**
 * The Razorpay effects runner: a durable consumer of `respawn.out.razorpay` that carries out
 * what billing asked for with the real SDK and reports the result back as a billing command.
 * The result's Nats-Msg-Id derives from the effect's own id, so an effect delivered twice
 * reports once (and billing ignores a late repeat from its state). A create whose first
 * attempt succeeded but whose report was lost finds its link again by reference id instead
 * of failing on Razorpay's unique reference. Retryable failures are retried with backoff up
 * to a limit; then a create is reported as failed, and a fetch dead-lettered (billing's
 * reconciliation timer asks again later).
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
  deadLetterHeaders,
  headerRecord,
  ActorKinds,
  BillingLinkStatus,
  BillingPaymentLinkCreated,
  BillingPaymentLinkFailed,
  BillingVerbs,
  HeaderNames,
  RazorpayCreateLink,
  RazorpayFetchLink,
  SpanKind,
  Streams,
  ErrorCodes,
  TerminalError,
  TraceAttributes,
  cmdSubject,
  messageSet,
  razorpayDlqSubject,
  razorpayEffectsConsumer,
  tracedConsume,
  traceIdOf,
  tracedPublish,
  withSpan,
  type MessageDef,
  type MessageOf,
  type Span,
  watchConsumer,
} from '../../contracts/index.ts';
import {
  RazorpayApiError,
  normalizeRazorpayError,
  type Payments,
  type PaymentLink,
} from './client.ts';

export interface RazorpayEffectsOptions {
  nc: NatsConnection;
  payments: Payments;
  log: Logger;
  /** Deliveries of an effect whose call keeps failing with a retryable error. */
  maxAttempts?: number;
  backoff?: { baseMs: number; maxMs: number };
}

export interface RazorpayEffects {
  start(): Promise<void>;
  /** Stops pulling and finishes the effect in hand; safe to call twice. */
  stop(): Promise<void>;
}

const effects = messageSet([RazorpayCreateLink, RazorpayFetchLink]);

export async function ensureRazorpayEffectsConsumer(nc: NatsConnection): Promise<void> {
  const jsm = await jetstreamManager(nc);
  const cfg = razorpayEffectsConsumer();
  try {
    await jsm.consumers.info(Streams.out.name, cfg.durable_name);
    await jsm.consumers.update(Streams.out.name, cfg.durable_name, {
      description: cfg.description,
      ack_wait: cfg.ack_wait,
      max_ack_pending: cfg.max_ack_pending,
    });
  } catch (err) {
    if (!(err instanceof JetStreamApiError && err.code === JetStreamApiCodes.ConsumerNotFound)) {
      throw err;
    }
    await jsm.consumers.add(Streams.out.name, cfg);
  }
}

export function createRazorpayEffects(opts: RazorpayEffectsOptions): RazorpayEffects {
  const log = opts.log.child({ component: 'razorpay-effects' });
  const js: JetStreamClient = jetstream(opts.nc);
  const maxAttempts = opts.maxAttempts ?? 8;
  const backoff = opts.backoff ?? { baseMs: 1_000, maxMs: 60_000 };
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  const delayFor = (deliveryCount: number): number =>
    Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, deliveryCount - 1));

  async function report<T extends string, P>(
    m: JsMsg,
    h: Record<string, string>,
    def: MessageDef<T, P>,
    subject: string,
    value: P,
  ): Promise<void> {
    const effectId = h[HeaderNames.msgId] ?? `seq-${m.info.stream}-${m.seq}`;
    const out = natsHeaders();
    out.set(HeaderNames.type, def.type);
    out.set(HeaderNames.causationId, effectId);
    const tp = h[HeaderNames.traceparent];
    if (tp !== undefined) out.set(HeaderNames.traceparent, tp);
    // Under the effect's consumer span (active): the report is its producer span's child.
    const msgID = `rzp-fx-${effectId}`;
    await tracedPublish(
      subject,
      out,
      () => js.publish(subject, def.encode(value), { msgID, headers: out }),
      {
        msgId: msgID,
      },
    );
  }

  async function deadLetter(m: JsMsg, h: Record<string, string>, code: string, reason: string) {
    const out = deadLetterHeaders(m, h, { code, reason, actor: 'gateway-razorpay' });
    await js.publish(razorpayDlqSubject(code), m.data, {
      msgID: `dlq-${m.info.stream}-${m.seq}`,
      headers: out,
    });
  }

  /**
   * Runs a Razorpay call, in a client span, while keeping the delivery from being handed to
   * another runner.
   */
  async function keepingAlive<T>(m: JsMsg, operation: string, fn: () => Promise<T>): Promise<T> {
    const t = setInterval(() => m.working(), 10_000);
    try {
      return await withSpan(
        `razorpay ${operation}`,
        {
          kind: SpanKind.CLIENT,
          attributes: { [TraceAttributes.operation]: operation },
          describeError: (err) => normalizeRazorpayError(err).message,
        },
        () => fn(),
      );
    } finally {
      clearInterval(t);
    }
  }

  async function createLink(
    m: JsMsg,
    h: Record<string, string>,
    e: MessageOf<typeof RazorpayCreateLink>,
    mlog: Logger,
  ): Promise<void> {
    let link: PaymentLink | undefined;
    let failure: RazorpayApiError | undefined;
    try {
      link = await keepingAlive(m, 'createLink', () =>
        opts.payments.createLink({
          amountPaise: e.amountPaise,
          currency: e.currency,
          referenceId: e.referenceId,
          description: e.description,
          expireBy: new Date(e.expireBy),
          notes: { player_id: e.playerId, topup_id: e.topupId },
        }),
      );
    } catch (err) {
      failure = normalizeRazorpayError(err);
      if (failure.statusCode === 400) {
        // Our first attempt may have created it before its report was lost.
        const existing = await keepingAlive(m, 'findLinkByReference', () =>
          opts.payments.findLinkByReference(e.referenceId),
        );
        if (existing?.amountPaise === e.amountPaise && existing.currency === e.currency) {
          link = existing;
        }
      }
    }
    const subjectOf = (verb: string) => cmdSubject(ActorKinds.billing, e.playerId, verb);
    if (link !== undefined) {
      await report(m, h, BillingPaymentLinkCreated, subjectOf(BillingVerbs.paymentLinkCreated), {
        topupId: e.topupId,
        referenceId: e.referenceId,
        linkId: link.id,
        shortUrl: link.shortUrl,
        amountPaise: link.amountPaise,
        currency: link.currency,
      });
      mlog.info(
        { player: e.playerId, topupId: e.topupId, linkId: link.id },
        'payment link created',
      );
      m.ack();
      return;
    }
    const f = failure ?? new RazorpayApiError('no link', 'UNKNOWN', undefined, true);
    if (f.retryable && m.info.deliveryCount < maxAttempts) {
      mlog.warn({ code: f.code, reason: f.message }, 'payment link not created yet; will retry');
      m.nak(delayFor(m.info.deliveryCount));
      return;
    }
    await report(m, h, BillingPaymentLinkFailed, subjectOf(BillingVerbs.paymentLinkFailed), {
      topupId: e.topupId,
      error: {
        code: f.code.slice(0, 64),
        message: f.message.slice(0, 500),
        retryable: f.retryable,
      },
    });
    mlog.warn({ player: e.playerId, topupId: e.topupId, code: f.code }, 'payment link failed');
    m.ack();
  }

  async function fetchLink(
    m: JsMsg,
    h: Record<string, string>,
    e: MessageOf<typeof RazorpayFetchLink>,
    mlog: Logger,
  ): Promise<void> {
    let link: PaymentLink;
    try {
      link = await keepingAlive(m, 'fetchLink', () => opts.payments.fetchLink(e.linkId));
    } catch (err) {
      const f = normalizeRazorpayError(err);
      if (f.retryable && m.info.deliveryCount < maxAttempts) {
        mlog.warn({ code: f.code, reason: f.message }, 'payment link fetch failed; will retry');
        m.nak(delayFor(m.info.deliveryCount));
        return;
      }
      await deadLetter(m, h, ErrorCodes.razorpayError, f.message);
      mlog.warn({ code: f.code, reason: f.message }, 'payment link fetch dead-lettered');
      m.term();
      return;
    }
    await report(
      m,
      h,
      BillingLinkStatus,
      cmdSubject(ActorKinds.billing, e.playerId, BillingVerbs.linkStatus),
      {
        topupId: e.topupId,
        linkId: link.id,
        status: link.status,
        amountPaidPaise: link.amountPaidPaise,
        currency: link.currency,
        payments: link.payments.slice(0, 20),
      },
    );
    mlog.info({ player: e.playerId, linkId: link.id, status: link.status }, 'payment link fetched');
    m.ack();
  }

  /** One consumer span per effect, its parent the context billing's emission carried. */
  function handle(m: JsMsg): Promise<void> {
    const h = headerRecord(m);
    return tracedConsume(m, h, h[HeaderNames.msgId], (span) => handleEffect(m, h, span));
  }

  async function handleEffect(m: JsMsg, h: Record<string, string>, span: Span): Promise<void> {
    const mlog = log.child({
      traceId: traceIdOf(span),
      subject: m.subject,
      msgId: h[HeaderNames.msgId],
      streamSeq: m.seq,
      deliveryCount: m.info.deliveryCount,
    });
    try {
      let e: MessageOf<typeof RazorpayCreateLink> | MessageOf<typeof RazorpayFetchLink>;
      try {
        e = effects.decode(m.data);
      } catch (err) {
        const t = err instanceof TerminalError ? err : undefined;
        const code = t?.code ?? 'invalid_payload';
        const reason = err instanceof Error ? err.message : String(err);
        await deadLetter(m, h, code, reason);
        mlog.warn({ code, reason }, 'razorpay effect dead-lettered');
        m.term();
        return;
      }
      if (e.type === RazorpayCreateLink.type) await createLink(m, h, e, mlog);
      else await fetchLink(m, h, e, mlog);
    } catch (err) {
      // NATS trouble while reporting: offer the effect again; its result id stays the same.
      mlog.warn({ err }, 'razorpay effect not settled; will retry');
      m.nak(delayFor(m.info.deliveryCount));
    }
  }

  return {
    async start() {
      await ensureRazorpayEffectsConsumer(opts.nc);
      const c = await js.consumers.get(Streams.out.name, razorpayEffectsConsumer().durable_name);
      messages = await c.consume({ max_messages: 8, expires: 5_000 });
      const iter = messages;
      const watch = watchConsumer(log, {
        stream: Streams.out.name,
        consumer: razorpayEffectsConsumer().durable_name,
      });
      watch.follow(iter);
      loop = (async () => {
        for await (const m of iter) {
          watch.delivered();
          await handle(m);
        }
      })().catch((err: unknown) => log.error({ err }, 'razorpay effects loop ended'));
      log.info('razorpay effects runner started');
    },
    stop() {
      stopped ??= (async () => {
        await messages?.close();
        await loop;
        log.info('razorpay effects runner stopped');
      })();
      return stopped;
    },
  };
}
