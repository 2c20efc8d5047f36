/**
 * The data a batch works on and the rows it writes: prepared deliveries, outcomes, outbox
 * rows for emissions and dead letters, and how a failure is classified.
 */
import type { JsMsg } from '@nats-io/jetstream';
import {
  headerRecord,
  ErrorCodes,
  HeaderNames,
  RespawnError,
  RetryableError,
  TerminalError,
  TimerFired,
  commandVerbs,
  dlqSubject,
  parseCmdSubject,
  type ActorKind,
  type ErrorData,
} from '../../contracts/index.ts';
import type { ActorDefinition, Emission } from './actor.ts';
import type { OutboxWrite } from './batch-sql.ts';

/** One delivery, parsed and decoded before the transaction (decoding needs no database). */
export interface Prepared {
  readonly kind: ActorKind;
  /** Undefined when the subject could not be parsed. */
  readonly key: string | undefined;
  readonly msgId: string;
  readonly subject: string;
  readonly stream: string;
  readonly streamSeq: number;
  readonly redeliveries: number;
  readonly headers: Readonly<Record<string, string>>;
  readonly data: Uint8Array;
  readonly decoded: { ok: true; message: unknown } | { ok: false; error: TerminalError };
  /** Set when the message comes from its key's parking lot rather than from JetStream. */
  readonly parkedId?: string;
  /**
   * The trace context of this delivery's own span (tracing.ts), carried by what it emits
   * instead of the input's, so the next hop is the span's child.
   */
  readonly trace?: Readonly<Record<string, string>>;
}

function typeOf(message: unknown): string | undefined {
  if (typeof message !== 'object' || message === null || !('type' in message)) return undefined;
  return typeof message.type === 'string' ? message.type : undefined;
}

/** One delivery of a partition consumer as the batch sees it: its key, id and decoded message. */
export function prepare(m: JsMsg, kind: ActorKind, def: ActorDefinition | undefined): Prepared {
  const headers = headerRecord(m);
  const msgId = headers[HeaderNames.msgId] ?? `seq-${m.info.stream}-${m.seq}`;
  const base = {
    kind,
    msgId,
    subject: m.subject,
    stream: m.info.stream,
    streamSeq: m.seq,
    redeliveries: m.info.deliveryCount - 1,
    headers,
    data: m.data,
  };
  let key: string | undefined;
  try {
    const parsed = parseCmdSubject(m.subject);
    key = parsed.key;
    if (parsed.kind !== kind) {
      throw new TerminalError(ErrorCodes.badSubject, `${m.subject} is not a ${kind} command`);
    }
    if (def === undefined) {
      throw new TerminalError(ErrorCodes.unknownType, `no ${kind} actor in this worker`);
    }
    const message = def.decode(m.data);
    const type = typeOf(message);
    const verbs = type === undefined ? undefined : commandVerbs(kind, type);
    if (verbs !== undefined && !verbs.has(parsed.verb)) {
      // Per-verb NATS permissions must mean something: a payload rides only its own verb.
      throw new TerminalError(
        ErrorCodes.badSubject,
        `${type} is not a cmd.${parsed.verb} command (it travels on cmd.${[...verbs].join(', cmd.')})`,
      );
    }
    return { ...base, key, decoded: { ok: true, message } };
  } catch (err) {
    const error =
      err instanceof TerminalError
        ? err
        : new TerminalError(ErrorCodes.invalidPayload, String(err), err);
    return { ...base, key, decoded: { ok: false, error } };
  }
}

export type Outcome =
  /** `ignored`: the handler said why the message changed nothing (HandlerResult.ignored). */
  | { kind: 'ok'; ignored?: string }
  | { kind: 'duplicate' }
  | { kind: 'stale_timer' }
  | { kind: 'dead'; error: ErrorData }
  | { kind: 'retry'; error: ErrorData; delayMs: number | undefined }
  /** Accepted and acked, waiting in its key's parking lot behind a failed message. */
  | { kind: 'parked'; error: ErrorData };

export interface PublishRow {
  id: string;
  subject: string;
  headers: Record<string, string>;
  data: Uint8Array;
}

export interface BatchResult {
  outcomes: Outcome[];
  publish: PublishRow[];
}

export type OutboxInsert = OutboxWrite;

export const pairKey = (a: string, b: string): string => `${a}\u0000${b}`;

export function carriedHeaders(p: Prepared): Record<string, string> {
  const h: Record<string, string> = { [HeaderNames.causationId]: p.msgId };
  const trace = p.trace ?? p.headers;
  const tp = trace[HeaderNames.traceparent];
  if (tp !== undefined) h[HeaderNames.traceparent] = tp;
  const ts = trace[HeaderNames.tracestate];
  if (ts !== undefined) h[HeaderNames.tracestate] = ts;
  return h;
}

export function deadLetter(p: Prepared, error: ErrorData): OutboxInsert {
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(p.headers)) {
    if (k === HeaderNames.msgId) headers[HeaderNames.dlqMsgId] = v;
    else headers[k] = v;
  }
  Object.assign(headers, {
    [HeaderNames.dlqCode]: error.code,
    [HeaderNames.dlqReason]: error.message.slice(0, 1000),
    [HeaderNames.dlqSubject]: p.subject,
    [HeaderNames.dlqStream]: p.stream,
    [HeaderNames.dlqStreamSeq]: String(p.streamSeq),
    [HeaderNames.dlqDeliveries]: String(p.redeliveries + 1),
    [HeaderNames.dlqActor]: p.kind,
  });
  return {
    subject: dlqSubject(p.kind, error.code),
    msg_type: 'dead_letter',
    headers,
    data: p.data,
  };
}

export function emissionRow(p: Prepared, e: Emission): OutboxInsert {
  const headers = { ...carriedHeaders(p), [HeaderNames.type]: e.type };
  return {
    subject: e.subject,
    msg_type: e.type,
    headers,
    data: e.data,
  };
}

/** Classifies a handler's failure, turning exhausted retries into dead letters. */
export function classify(err: unknown, redeliveries: number, maxAttempts: number): Outcome {
  if (err instanceof RespawnError && !err.retryable) return { kind: 'dead', error: err.toData() };
  const data: ErrorData =
    err instanceof RespawnError
      ? err.toData()
      : {
          code: ErrorCodes.unavailable,
          message: err instanceof Error ? err.message : String(err),
          retryable: true,
        };
  if (redeliveries + 1 >= maxAttempts) {
    return {
      kind: 'dead',
      error: {
        code: ErrorCodes.attemptsExhausted,
        message: `gave up after ${redeliveries + 1} attempts: ${data.code}: ${data.message}`,
        retryable: false,
      },
    };
  }
  const delayMs = err instanceof RetryableError ? err.delayMs : undefined;
  return { kind: 'retry', error: data, delayMs };
}

export function isTimer(p: Prepared): boolean {
  return (
    p.decoded.ok &&
    typeof p.decoded.message === 'object' &&
    p.decoded.message !== null &&
    (p.decoded.message as { type?: unknown }).type === TimerFired.type
  );
}
