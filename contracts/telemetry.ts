/**
 * Traces, for every process: the W3C trace context carried in NATS headers (`injectTrace` /
 * `extractTrace`), the span helpers each hop uses and the attribute names (`TraceAttributes`),
 * all in one place; starting tracing in a process is telemetry-setup.ts (`startTelemetry`).
 *
 * Spans are always made once telemetry is started (so trace ids reach the logs); they are
 * exported over OTLP/HTTP only when `OTEL_EXPORTER_OTLP_ENDPOINT` or
 * `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set. Without `startTelemetry` (tests, tools) the API
 * is a no-op whose spans carry their parent's context, so a received `traceparent` still
 * travels on unchanged.
 *
 * The OpenTelemetry API keeps its tracer provider, context manager and propagator in
 * process-wide globals: that is how the HTTP, PostgreSQL and Redis instrumentations find them.
 * `startTelemetry` is therefore called once per process, by its entry point, and its handle's
 * `shutdown` undoes it.
 */
import {
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  context,
  trace,
  type Attributes,
  type Context,
  type Link,
  type Span,
  type SpanContext,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { maskUrlPasswords } from './redact.ts';
import { ActorKinds, ROOT } from './subjects.ts';

export { ROOT_CONTEXT, SpanKind, type Context, type Span, type SpanContext };

/** Span attribute names Respawn sets (OpenTelemetry's messaging conventions where they fit). */
export const TraceAttributes = {
  player: 'respawn.player.id',
  session: 'respawn.session.id',
  actor: 'respawn.actor.kind',
  actorKey: 'respawn.actor.key',
  errorCode: 'respawn.error.code',
  timerName: 'respawn.timer.name',
  ingressSource: 'respawn.ingress.source',
  chat: 'respawn.telegram.chat_id',
  vmName: 'respawn.vm.name',
  region: 'respawn.region',
  /** The third-party operation of a client span (`sendMessage`, `createOrUpdateVm`, …). */
  operation: 'respawn.api.operation',
  messagingSystem: 'messaging.system',
  operationType: 'messaging.operation.type',
  subject: 'messaging.destination.name',
  subjectTemplate: 'messaging.destination.template',
  msgId: 'messaging.message.id',
  stream: 'messaging.nats.stream',
  streamSeq: 'messaging.nats.stream.sequence',
  deliveryCount: 'messaging.nats.delivery_count',
  httpRoute: 'http.route',
  httpStatus: 'http.response.status_code',
} as const;

/** The tracer every hop uses (one instrumentation scope for Respawn's own spans). */
export const TRACER_NAME = 'respawn';

const w3c = new W3CTraceContextPropagator();

/** NATS `MsgHdrs`, or a plain record (stored headers, HTTP request headers). */
export type TraceCarrier =
  | { get(k: string): string; set(k: string, v: string): void }
  | Readonly<Record<string, string | string[] | undefined>>;

function isHeaders(
  c: TraceCarrier,
): c is { get(k: string): string; set(k: string, v: string): void } {
  return typeof (c as { get?: unknown }).get === 'function';
}

const getter: TextMapGetter<TraceCarrier> = {
  keys: (c) => (isHeaders(c) ? [] : Object.keys(c)),
  get(c, key) {
    if (isHeaders(c)) return c.get(key) || undefined;
    const v = c[key];
    return Array.isArray(v) ? v[0] : v;
  },
};

const setter: TextMapSetter<TraceCarrier> = {
  set(c, key, value) {
    if (isHeaders(c)) c.set(key, value);
    else (c as Record<string, string>)[key] = value;
  },
};

/**
 * Writes `traceparent` (and `tracestate`) of `ctx`'s span into NATS headers or a record. A
 * context without a valid span writes nothing, so a header copied before stays as it was.
 */
export function injectTrace(carrier: TraceCarrier, ctx: Context = context.active()): void {
  w3c.inject(ctx, carrier, setter);
}

/** The remote parent carried by headers, on top of `base` (ROOT unless given). */
export function extractTrace(
  carrier: TraceCarrier | undefined,
  base: Context = ROOT_CONTEXT,
): Context {
  return carrier === undefined ? base : w3c.extract(base, carrier, getter);
}

/** The trace id of a span or context, for log lines; undefined when there is none. */
export function traceIdOf(of: Span | Context | undefined): string | undefined {
  return of === undefined ? undefined : spanContextOf(of)?.traceId;
}

/** The span of the active context, if any (an instrumentation's HTTP server span, say). */
export function activeSpan(): Span | undefined {
  return trace.getSpan(context.active());
}

/** The valid span context of a span or context (a remote parent, a link target). */
export function spanContextOf(of: Span | Context): SpanContext | undefined {
  const sc = ('spanContext' in of ? of : trace.getSpan(of))?.spanContext();
  return sc !== undefined && trace.isSpanContextValid(sc) ? sc : undefined;
}

/**
 * A subject without its high-cardinality tokens, for span names: the actor key of
 * `respawn.<kind>.<key>.cmd|evt.<verb>[.<partition>]` and the chat of
 * `respawn.out.telegram.<chat>` become `{key}` / `{chat}`.
 */
export function subjectTemplate(subject: string): string {
  const t = subject.split('.');
  if (t[0] !== ROOT) return subject;
  const kind = t[1] ?? '';
  if (Object.values(ActorKinds).includes(kind as never) && t.length >= 5) {
    return [ROOT, kind, '{key}', t[3], t[4]].join('.');
  }
  if (kind === 'out' && t[2] === 'telegram' && t.length === 4) return `${ROOT}.out.telegram.{chat}`;
  return subject;
}

export interface MessageFacts {
  subject: string;
  msgId?: string | undefined;
  stream?: string | undefined;
  streamSeq?: number | undefined;
  deliveryCount?: number | undefined;
}

/** Messaging attributes of one NATS message. */
export function messageAttributes(
  op: 'publish' | 'process',
  m: MessageFacts,
  extra: Attributes = {},
): Attributes {
  const a: Attributes = {
    [TraceAttributes.messagingSystem]: 'nats',
    [TraceAttributes.operationType]: op,
    [TraceAttributes.subject]: m.subject,
    [TraceAttributes.subjectTemplate]: subjectTemplate(m.subject),
  };
  if (m.msgId !== undefined) a[TraceAttributes.msgId] = m.msgId;
  if (m.stream !== undefined) a[TraceAttributes.stream] = m.stream;
  if (m.streamSeq !== undefined) a[TraceAttributes.streamSeq] = m.streamSeq;
  if (m.deliveryCount !== undefined) a[TraceAttributes.deliveryCount] = m.deliveryCount;
  return { ...a, ...extra };
}

export interface SpanSpec {
  kind?: SpanKind;
  attributes?: Attributes;
  /** The parent; the active context when not given. */
  parent?: Context;
  links?: Link[];
  /** What a failure is recorded as, when its message may hold a secret (see failSpan). */
  describeError?: (err: unknown) => string;
}

/** Starts a span without making it active; returns it with the context it is the span of. */
export function openSpan(name: string, spec: SpanSpec = {}): { span: Span; ctx: Context } {
  const parent = spec.parent ?? context.active();
  const span = trace.getTracer(TRACER_NAME).startSpan(
    name,
    {
      kind: spec.kind ?? SpanKind.INTERNAL,
      ...(spec.attributes === undefined ? {} : { attributes: spec.attributes }),
      ...(spec.links === undefined ? {} : { links: spec.links }),
    },
    parent,
  );
  return { span, ctx: trace.setSpan(parent, span) };
}

/**
 * Marks a span failed with what was thrown: its name and message (URL passwords masked, no
 * stack), or `describe`'s text where an error may hold a secret (a bot token in a URL).
 */
export function failSpan(span: Span, err: unknown, describe?: (err: unknown) => string): void {
  const message = maskUrlPasswords(
    describe?.(err) ?? (err instanceof Error ? err.message : String(err)),
  );
  span.recordException({ name: err instanceof Error ? err.name : 'Error', message });
  span.setStatus({ code: SpanStatusCode.ERROR, message });
}

/** Runs `fn` with `ctx` active (what it awaits sees that span as its parent). */
export function runInContext<T>(ctx: Context, fn: () => T): T {
  return context.with(ctx, fn);
}

/** Marks a span failed with a message (an outcome rather than an exception). */
export function spanError(span: Span, message: string, code?: string): void {
  span.setStatus({ code: SpanStatusCode.ERROR, message });
  if (code !== undefined) span.setAttribute(TraceAttributes.errorCode, code);
}

/**
 * Runs `fn` inside a new span (active for everything `fn` awaits: instrumented HTTP,
 * PostgreSQL and Redis calls become its children); a throw marks it failed and is rethrown.
 */
export async function withSpan<T>(
  name: string,
  spec: SpanSpec,
  fn: (span: Span, ctx: Context) => Promise<T>,
): Promise<T> {
  const { span, ctx } = openSpan(name, spec);
  try {
    return await context.with(ctx, () => fn(span, ctx));
  } catch (err) {
    failSpan(span, err, spec.describeError);
    throw err;
  } finally {
    span.end();
  }
}

/** What a consumer span needs of one JetStream delivery (a nats.js JsMsg has it). */
export interface Delivery {
  subject: string;
  seq: number;
  info: { stream: string; deliveryCount: number };
}

/**
 * A consumer span around handling one JetStream delivery, its parent the trace context the
 * message carried (`carrier`: its headers), so one command stays one trace across hops.
 */
export function tracedConsume<T>(
  m: Delivery,
  carrier: TraceCarrier | undefined,
  msgId: string | undefined,
  fn: (span: Span, ctx: Context) => Promise<T>,
  attributes: Attributes = {},
): Promise<T> {
  return withLazySpan(
    SpanKind.CONSUMER,
    extractTrace(carrier),
    (span) => {
      span.updateName(`process ${subjectTemplate(m.subject)}`);
      span.setAttributes(
        messageAttributes(
          'process',
          {
            subject: m.subject,
            msgId,
            stream: m.info.stream,
            streamSeq: m.seq,
            deliveryCount: m.info.deliveryCount,
          },
          attributes,
        ),
      );
    },
    fn,
  );
}

/**
 * A producer span around one JetStream publish, its context written into `headers` first, so
 * the consumer's span is its child.
 */
export function tracedPublish<T>(
  subject: string,
  headers: TraceCarrier,
  publish: () => Promise<T>,
  spec: { parent?: Context; attributes?: Attributes; msgId?: string } = {},
): Promise<T> {
  return withLazySpan(
    SpanKind.PRODUCER,
    spec.parent ?? context.active(),
    (span) => {
      span.updateName(`publish ${subjectTemplate(subject)}`);
      span.setAttributes(
        messageAttributes('publish', { subject, msgId: spec.msgId }, spec.attributes),
      );
    },
    (_span, ctx) => {
      injectTrace(headers, ctx);
      return publish();
    },
  );
}

/**
 * `withSpan` for the per-message spans: the name and attributes are made only for a span that
 * is recorded. With no exporter no span is (telemetry-setup.ts), and building them for every
 * delivery and publish was about 1% of a busy worker's CPU. The samplers Respawn configures
 * decide on the trace alone, never on a span's name or attributes.
 */
async function withLazySpan<T>(
  kind: SpanKind,
  parent: Context,
  describe: (span: Span) => void,
  fn: (span: Span, ctx: Context) => Promise<T>,
): Promise<T> {
  const span = trace.getTracer(TRACER_NAME).startSpan('message', { kind }, parent);
  if (span.isRecording()) describe(span);
  const ctx = trace.setSpan(parent, span);
  try {
    return await context.with(ctx, () => fn(span, ctx));
  } catch (err) {
    failSpan(span, err);
    throw err;
  } finally {
    span.end();
  }
}
