/**
 * The worker's spans. Each delivery handled in a batch gets a consumer span whose parent is
 * the trace context in the message's headers; the span's own context is what the delivery's
 * emissions carry (rows.ts `carriedHeaders`), so the next hop is its child. The transaction runs
 * inside the span of its one message (PostgreSQL spans nest under it), or, for a batch of
 * several, inside a batch span linked to each message's span.
 *
 * Fired timers: a timer firing is published by the timer sweep, long after the handler that set
 * it, and starts a new trace. When its headers carry a trace context (the context stored when
 * the timer was set), the new trace is linked to it rather than parented by it: an idle timeout
 * an hour later is not part of the play command's trace.
 */
import {
  ActorKinds,
  ROOT_CONTEXT,
  SpanKind,
  TraceAttributes,
  extractTrace,
  injectTrace,
  messageAttributes,
  openSpan,
  spanContextOf,
  traceIdOf,
  withSpan,
  type Context,
  type Span,
} from '../../contracts/index.ts';
import { isTimer, type Prepared } from './rows.ts';

export interface BatchTrace {
  /** The deliveries, each with its span's context to carry (`Prepared.trace`). */
  readonly items: Prepared[];
  /** Runs the batch's work (transaction, settlement) inside the right span. */
  run<T>(fn: () => Promise<T>): Promise<T>;
  /** Ends every delivery's span. */
  end(): void;
}

/** Actor kinds whose key is a player id. */
const PLAYER_KEYED: ReadonlySet<string> = new Set([ActorKinds.session, ActorKinds.billing]);

/** Fields a log line about a delivery carries: trace id, actor key and, if it is one, player. */
export function traceFields(p: Prepared): { traceId?: string; key?: string; player?: string } {
  const traceId = traceIdOf(extractTrace(p.trace ?? p.headers));
  return {
    ...(traceId === undefined ? {} : { traceId }),
    ...(p.key === undefined ? {} : { key: p.key }),
    ...(p.key !== undefined && PLAYER_KEYED.has(p.kind) ? { player: p.key } : {}),
  };
}
function startDelivery(p: Prepared): { span: Span; ctx: Context; carried: Prepared } {
  const remote = extractTrace(p.headers);
  const timer = isTimer(p);
  const remoteSpan = spanContextOf(remote);
  const { span, ctx } = openSpan('message', {
    kind: SpanKind.CONSUMER,
    ...(timer
      ? {
          parent: ROOT_CONTEXT,
          ...(remoteSpan === undefined ? {} : { links: [{ context: remoteSpan }] }),
        }
      : { parent: remote }),
  });
  // Name and attributes only for a recorded span: with no exporter none is, and building
  // them for every delivery cost more than the span.
  if (span.isRecording()) {
    const attributes = messageAttributes(
      'process',
      {
        subject: p.subject,
        msgId: p.msgId,
        stream: p.stream,
        streamSeq: p.streamSeq,
        deliveryCount: p.redeliveries + 1,
      },
      {
        [TraceAttributes.actor]: p.kind,
        ...(p.key === undefined ? {} : { [TraceAttributes.actorKey]: p.key }),
        ...(p.key !== undefined && PLAYER_KEYED.has(p.kind)
          ? { [TraceAttributes.player]: p.key }
          : {}),
        ...(timer && p.decoded.ok
          ? { [TraceAttributes.timerName]: (p.decoded.message as { name: string }).name }
          : {}),
      },
    );
    span.updateName(`process ${attributes[TraceAttributes.subjectTemplate] as string}`);
    span.setAttributes(attributes);
  }
  const carrier: Record<string, string> = {};
  injectTrace(carrier, ctx);
  // Without telemetry the span is a no-op carrying its parent: the input's context travels on.
  return {
    span,
    ctx,
    carried: Object.keys(carrier).length === 0 ? p : { ...p, trace: carrier },
  };
}

export function traceBatch(prepared: readonly Prepared[]): BatchTrace {
  const started = prepared.map(startDelivery);
  return {
    items: started.map((s) => s.carried),
    run(fn) {
      const only = started.length === 1 ? started[0] : undefined;
      if (only !== undefined)
        return withSpan('actor transaction', { parent: only.ctx }, () => fn());
      return withSpan(
        'actor transaction',
        {
          parent: ROOT_CONTEXT,
          links: started.map((s) => ({ context: s.span.spanContext() })),
          attributes: { 'respawn.batch.size': started.length },
        },
        () => fn(),
      );
    },
    end() {
      for (const { span } of started) span.end();
    },
  };
}
