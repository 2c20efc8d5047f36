/**
 * The host of a pure ingress route: a durable consumer of `respawn.in.<source>` (raw input the
 * gateway authenticated and stored) that publishes what `route` makes of each message.
 *
 * - Each routed command is published with its own `Nats-Msg-Id`, so a redelivered or
 *   re-stored input lands as JetStream duplicates, not as second commands.
 * - The input is acked only after every routed command was stored.
 * - `route` throwing a TerminalError (bad input) dead-letters the original body and headers to
 *   `respawn.dlq.<source>.<code>` with the reason, then terminates it; anything else
 *   (a publish that failed, NATS away) is offered again with a growing delay.
 * It never crashes on input.
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
import type { DeadLetterCounter } from '../runtime/index.ts';
import {
  deadLetterHeaders,
  headerRecord,
  HeaderNames,
  RespawnError,
  RetryableError,
  Streams,
  TerminalError,
  TraceAttributes,
  createJsPublisher,
  failSpan,
  ingressConsumer,
  ingressDlqSubject,
  spanError,
  tracedConsume,
  traceIdOf,
  tracedPublish,
  type Context,
  type IngressSource,
  type Span,
  watchConsumer,
} from '../../contracts/index.ts';

/** A command for an actor, ready to publish. */
/** Inputs forwarded at once (the consumer's max_ack_pending is 64). */
const MAX_IN_FLIGHT = 64;

export interface RoutedCommand {
  subject: string;
  data: Uint8Array;
  /** Derived from the input, so the same input always routes to the same ids. */
  msgId: string;
  /** The message's versioned type (`Respawn-Type` header), when the route knows it. */
  type?: string;
}

export interface RouteContext {
  /** The input's `Nats-Msg-Id` as the gateway stored it. */
  msgId: string | undefined;
  headers: Readonly<Record<string, string>>;
  now: Date;
}

/** Pure: input bytes to commands. Throws a TerminalError for input it can never use. */
export type IngressRoute = (data: Uint8Array, ctx: RouteContext) => readonly RoutedCommand[];

export type RoutedSource = IngressSource;

export interface IngressRouterOptions {
  nc: NatsConnection;
  log: Logger;
  source: RoutedSource;
  /** Durable consumer name; defaults to `ingress-<source>`. */
  durable?: string;
  route: IngressRoute;
  /** First retry delay after a failure; doubles per delivery up to `maxRetryDelayMs`. */
  retryDelayMs?: number;
  maxRetryDelayMs?: number;
  now?: () => Date;
  /** The worker's `respawn_actor_dead_letters_total`, counted as actor `ingress-<source>`. */
  deadLetters?: DeadLetterCounter;
}

export type { DeadLetterCounter } from '../runtime/index.ts';

export interface IngressRouter {
  start(): Promise<void>;
  /** Stops pulling and finishes the message in hand; safe to call twice. */
  stop(): Promise<void>;
}

/** Creates the durable consumer, or updates what may change on an existing one. */
export async function ensureIngressConsumer(
  nc: NatsConnection,
  source: IngressSource,
  durable?: string,
): Promise<string> {
  const jsm = await jetstreamManager(nc);
  const cfg = ingressConsumer(source, durable);
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
  return cfg.durable_name;
}

async function deadLetter(
  js: JetStreamClient,
  m: JsMsg,
  source: IngressSource,
  original: Record<string, string>,
  err: TerminalError,
): Promise<void> {
  const h = deadLetterHeaders(m, original, {
    code: err.code,
    reason: err.message,
    actor: `ingress-${source}`,
  });
  // One dead letter per stored input, however often it is redelivered.
  await js.publish(ingressDlqSubject(source, err.code), m.data, {
    msgID: `dlq-${m.info.stream}-${m.seq}`,
    headers: h,
  });
}

type Outcome =
  | { kind: 'publish'; commands: readonly RoutedCommand[] }
  | { kind: 'dead'; error: TerminalError }
  | { kind: 'retry'; error: unknown; delayMs: number | undefined };

function runRoute(route: IngressRoute, data: Uint8Array, ctx: RouteContext): Outcome {
  try {
    return { kind: 'publish', commands: route(data, ctx) };
  } catch (err) {
    if (err instanceof TerminalError) return { kind: 'dead', error: err };
    if (err instanceof RetryableError) return { kind: 'retry', error: err, delayMs: err.delayMs };
    return { kind: 'retry', error: err, delayMs: undefined };
  }
}

export function createIngressRouter(opts: IngressRouterOptions): IngressRouter {
  const { source, route } = opts;
  const log = opts.log.child({ component: `ingress-${source}` });
  const js = jetstream(opts.nc);
  // Routed commands: one publish per input at a peak (contracts/js-publish.ts).
  const publisher = createJsPublisher(opts.nc);
  const baseDelay = opts.retryDelayMs ?? 500;
  const maxDelay = opts.maxRetryDelayMs ?? 30_000;
  const now = opts.now ?? ((): Date => new Date());
  let messages: ConsumerMessages | undefined;
  let loop: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;

  const backoff = (deliveries: number): number =>
    Math.min(maxDelay, baseDelay * 2 ** Math.min(20, Math.max(0, deliveries - 1)));

  async function publishAll(
    commands: readonly RoutedCommand[],
    original: Record<string, string>,
    trace: Context,
  ): Promise<number> {
    const acks = await Promise.all(
      commands.map((c) => {
        const h = natsHeaders();
        if (c.type !== undefined) h.set(HeaderNames.type, c.type);
        const cause = original[HeaderNames.msgId];
        if (cause !== undefined) h.set(HeaderNames.causationId, cause);
        // Each command's producer span is a child of this input's consumer span.
        return tracedPublish(
          c.subject,
          h,
          () => publisher.publish(c.subject, c.data, { msgID: c.msgId, headers: h }),
          { parent: trace, msgId: c.msgId },
        );
      }),
    );
    return acks.filter((a) => a.duplicate).length;
  }

  /** `respawn.<kind>.<key>.cmd.<verb>` → `<kind>.<key>`: one player's inputs stay in order. */
  function orderKey(commands: readonly RoutedCommand[]): string {
    const t = commands[0]?.subject.split('.') ?? [];
    return `${t[1] ?? ''}.${t[2] ?? ''}`;
  }

  /** One consumer span per input, its parent the context the gateway stored with it. */
  function handle(
    m: JsMsg,
    original: Record<string, string>,
    outcome: ReturnType<typeof runRoute>,
  ): Promise<void> {
    return tracedConsume(
      m,
      original,
      original[HeaderNames.msgId],
      (span, ctx) => settleInput(m, original, outcome, ctx, span),
      { [TraceAttributes.ingressSource]: source },
    );
  }

  async function settleInput(
    m: JsMsg,
    original: Record<string, string>,
    outcome: ReturnType<typeof runRoute>,
    trace: Context,
    span: Span,
  ): Promise<void> {
    const ingressId = original[HeaderNames.msgId];
    // A child logger per input costs more than routing it: made only when a line is logged.
    let child: Logger | undefined;
    const mlog = (): Logger =>
      (child ??= log.child({
        traceId: traceIdOf(span),
        subject: m.subject,
        msgId: ingressId,
        streamSeq: m.seq,
        deliveryCount: m.info.deliveryCount,
      }));
    try {
      switch (outcome.kind) {
        case 'dead':
          spanError(span, outcome.error.message, outcome.error.code);
          await deadLetter(js, m, source, original, outcome.error);
          opts.deadLetters?.inc({ actor: `ingress-${source}`, code: outcome.error.code });
          mlog().warn(
            { code: outcome.error.code, reason: outcome.error.message },
            'ingress message dead-lettered',
          );
          m.term();
          return;
        case 'retry': {
          const delayMs = outcome.delayMs ?? backoff(m.info.deliveryCount);
          const code = outcome.error instanceof RespawnError ? outcome.error.code : undefined;
          failSpan(span, outcome.error);
          mlog().error({ err: outcome.error, code, delayMs }, 'ingress route failed; will retry');
          m.nak(delayMs);
          return;
        }
        case 'publish': {
          const duplicates = await publishAll(outcome.commands, original, trace);
          if (log.isLevelEnabled('debug'))
            mlog().debug(
              { commands: outcome.commands.map((c) => c.subject), duplicates },
              'ingress message routed',
            );
          m.ack();
          return;
        }
      }
    } catch (err) {
      const delayMs = backoff(m.info.deliveryCount);
      failSpan(span, err);
      mlog().warn({ err, delayMs }, 'ingress message not forwarded; will retry');
      m.nak(delayMs);
    }
  }

  return {
    async start() {
      const durable = await ensureIngressConsumer(opts.nc, source, opts.durable);
      const c = await js.consumers.get(Streams.ingress.name, durable);
      messages = await c.consume({ max_messages: 64, expires: 5_000 });
      const iter = messages;
      const watch = watchConsumer(log, { stream: Streams.ingress.name, consumer: durable });
      watch.follow(iter);
      loop = (async () => {
        // Routing is pure, so it runs first: the commands' actor key orders the work. Inputs
        // for one key are forwarded in arrival order; different keys go on side by side.
        const chains = new Map<string, Promise<void>>();
        const inFlight = new Set<Promise<void>>();
        for await (const m of iter) {
          watch.delivered();
          const original = headerRecord(m);
          const ctx = { msgId: original[HeaderNames.msgId], headers: original, now: now() };
          const outcome = runRoute(route, m.data, ctx);
          const key = outcome.kind === 'publish' ? orderKey(outcome.commands) : '';
          const next = (chains.get(key) ?? Promise.resolve()).then(() =>
            handle(m, original, outcome),
          );
          chains.set(key, next);
          inFlight.add(next);
          void next.finally(() => {
            inFlight.delete(next);
            if (chains.get(key) === next) chains.delete(key);
          });
          if (inFlight.size >= MAX_IN_FLIGHT) await Promise.race(inFlight);
        }
        await Promise.all(inFlight);
      })().catch((err: unknown) => log.error({ err }, 'ingress loop ended'));
      log.info({ durable }, 'ingress router started');
    },
    stop() {
      stopped ??= (async () => {
        await messages?.close();
        await loop;
        publisher.close();
        log.info('ingress router stopped');
      })();
      return stopped;
    },
  };
}
