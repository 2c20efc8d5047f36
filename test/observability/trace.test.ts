/**
 * One player command is one trace. A `/play` typed in Telegram is POSTed to the real gateway
 * and goes through the telegram ingress router, the session actor, the allocator, the Azure
 * effects runner (the real SDK against the ARM fake) and back out through the Telegram sender
 * (grammY against the Bot API fake). Everything runs in this process, with an in-memory span
 * exporter on the one tracer provider, but every hop gets its parent only from the NATS headers
 * of the message it consumes: a hop that dropped the context would start a new trace here too.
 */
import { Redis } from 'ioredis';
import { Api } from 'grammy';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  InMemorySpanExporter,
  SimpleSpanProcessor,
  type ReadableSpan,
} from '@opentelemetry/sdk-trace-node';
import {
  ActorKinds,
  SpanKind,
  TraceAttributes,
  ensureTopology,
  startTelemetry,
  type Telemetry,
} from '../../contracts/index.ts';
import { createAllocatorActor, defaultAllocatorConfig } from '../../actors/allocator/index.ts';
import { createTelegramIngress, type IngressRouter } from '../../actors/ingress/index.ts';
import {
  createWorker,
  systemClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import { createSessionActor, defaultSessionConfig } from '../../actors/session/index.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { createTelegramOutbound, type TelegramOutbound } from '../../gateway/index.ts';
import { redisUrl } from '../harness/index.ts';
import { startCloud, type CloudEnv } from '../support/cloud-env.ts';
import { eventually, quietLog, startRuntimeEnv, type RuntimeEnv } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  postUpdate,
  startGateway,
  textUpdate,
  type RunningTestGateway,
} from '../gateway/support.ts';

const REGION = 'centralindia';
const PLAYER = 7_070_001;

const exporter = new InMemorySpanExporter();
let telemetry: Telemetry;
let env: RuntimeEnv;
let cloud: CloudEnv;
let worker: Worker;
let router: IngressRouter;
let telegram: TelegramFake;
let outbound: TelegramOutbound;
let gateway: RunningTestGateway;

beforeAll(async () => {
  // First: the instrumentations must be in place before PostgreSQL and Redis are used.
  telemetry = await startTelemetry({
    config: { serviceName: 'respawn-trace-test', tracesUrl: undefined, disabled: false },
    log: quietLog(),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  cloud = await startCloud(env, { region: REGION, pollIntervalMs: 10 });
  worker = createWorker({
    nc: env.nc,
    db: env.db,
    log: env.log,
    clock: systemClock,
    actors: [
      createSessionActor({
        ...defaultSessionConfig,
        region: REGION,
        requireAdmission: false,
      }) as unknown as ActorDefinition,
      createAllocatorActor({ ...defaultAllocatorConfig }) as unknown as ActorDefinition,
    ],
  });
  await worker.start();
  router = createTelegramIngress({ nc: env.nc, log: env.log, topupPresetsPaise: [10_000] });
  await router.start();
  telegram = await startTelegramFake({ token: BOT_TOKEN });
  outbound = createTelegramOutbound({
    nc: env.nc,
    js: env.js,
    jsm: env.jsm,
    api: new Api(BOT_TOKEN, { apiRoot: telegram.url }),
    log: env.log,
    metricsRegistry: new Registry(),
    perChatIntervalMs: 10,
    globalPerSecond: 1_000,
    secrets: [BOT_TOKEN],
  });
  await outbound.start();
  gateway = await startGateway(env, {
    redis: await readyRedis(),
  });
});

afterAll(async () => {
  await gateway?.close();
  await outbound?.stop();
  await telegram?.stop();
  await router?.stop();
  await worker?.stop();
  await cloud?.stop();
  await env?.dispose();
  await telemetry?.shutdown();
});

async function readyRedis(): Promise<Redis> {
  const redis = new Redis(redisUrl(), { maxRetriesPerRequest: 1 });
  if (redis.status !== 'ready') await new Promise((r) => redis.once('ready', r));
  return redis;
}

const idOf = (s: ReadableSpan): string => s.spanContext().spanId;
const traceOf = (s: ReadableSpan): string => s.spanContext().traceId;
const parentOf = (s: ReadableSpan): string | undefined => s.parentSpanContext?.spanId;

it('carries one trace id from the webhook through every hop of a play command', async () => {
  const answer = await postUpdate(gateway.url, textUpdate(1, PLAYER, '/play'));
  expect(answer.status).toBe(200);

  // The effects of the command: the VM exists in the ARM fake, the player was told twice
  // (starting, then which VM they got: one status message, sent and then edited).
  await eventually(
    'a VM in the ARM fake and the status message sent and edited',
    () =>
      Promise.resolve(
        cloud.arm.state.vms().some((v) => v.provisioningState === 'Succeeded') &&
          telegram.sent(PLAYER).some((m) => m.edits.length >= 1),
      ),
    45_000,
  );
  await telemetry.forceFlush();
  const named = (name: string): ReadableSpan[] =>
    exporter.getFinishedSpans().filter((s) => s.name === name);
  const tellSpans = (): ReadableSpan[] => [
    ...named('telegram sendMessage'),
    ...named('telegram editMessageText'),
  ];
  await eventually('the second Bot API call’s span to end', () =>
    Promise.resolve(tellSpans().length >= 2),
  );
  // The create effect's span ends after the VM exists (it still reports the result).
  await eventually('the Azure create effect’s span to end', () =>
    Promise.resolve(
      named(`process respawn.out.azure.${REGION}`).some(
        (s) => s.attributes[TraceAttributes.vmName] !== undefined,
      ),
    ),
  );

  const spans = exporter.getFinishedSpans();
  const byId = new Map(spans.map((s) => [idOf(s), s]));
  const one = (what: string, pick: (s: ReadableSpan) => boolean): ReadableSpan => {
    const found = spans.filter(pick);
    expect(found.length, `exactly one span for ${what}`).toBe(1);
    return found[0]!;
  };
  const ancestors = (s: ReadableSpan): ReadableSpan[] => {
    const out: ReadableSpan[] = [];
    for (let p = byId.get(parentOf(s) ?? ''); p !== undefined; p = byId.get(parentOf(p) ?? ''))
      out.push(p);
    return out;
  };
  const descendsFrom = (s: ReadableSpan, from: ReadableSpan): boolean =>
    ancestors(s).includes(from);

  // Each hop, by the name it is given.
  const webhook = one(
    'the webhook request',
    (s) => s.name === 'POST /telegram/webhook' && s.kind === SpanKind.SERVER,
  );
  const gatewayPublish = one(
    'the gateway publish',
    (s) => s.name === 'publish respawn.in.telegram',
  );
  const routerConsume = one('the router consume', (s) => s.name === 'process respawn.in.telegram');
  const routerPublish = one(
    'the router publish',
    (s) => s.name === 'publish respawn.session.{key}.cmd.start',
  );
  const sessionStart = one(
    'the session actor handling start',
    (s) => s.name === 'process respawn.session.{key}.cmd.start',
  );
  const allocRequest = one(
    'the allocator handling the request',
    (s) =>
      s.attributes[TraceAttributes.actor] === ActorKinds.alloc &&
      s.name === 'process respawn.alloc.{key}.cmd.request',
  );
  const azureEffect = one(
    'the Azure create effect',
    (s) =>
      s.name === `process respawn.out.azure.${REGION}` &&
      s.attributes[TraceAttributes.vmName] !== undefined,
  );
  const azureCall = one('the Azure VM create call', (s) => s.name === 'azure createOrUpdateVm');
  const sends = spans.filter(
    (s) => s.name === 'telegram sendMessage' || s.name === 'telegram editMessageText',
  );
  expect(sends.map((s) => s.name).sort()).toEqual([
    'telegram editMessageText',
    'telegram sendMessage',
  ]);
  const outboundConsumes = sends.map((s) => byId.get(parentOf(s) ?? ''));

  // One trace id across every hop.
  const traceId = traceOf(webhook);
  const hops = {
    gatewayPublish,
    routerConsume,
    routerPublish,
    sessionStart,
    allocRequest,
    azureEffect,
    azureCall,
    ...Object.fromEntries(sends.map((s, i) => [`telegramSend${i}`, s])),
  };
  for (const [hop, span] of Object.entries(hops)) {
    expect(traceOf(span), `${hop} (${span.name}) is in the webhook's trace`).toBe(traceId);
  }

  // Parent links form a chain from the webhook span.
  expect(parentOf(gatewayPublish), 'gateway publish ← webhook').toBe(idOf(webhook));
  expect(parentOf(routerConsume), 'router consume ← gateway publish').toBe(idOf(gatewayPublish));
  expect(parentOf(routerPublish), 'router publish ← router consume').toBe(idOf(routerConsume));
  expect(parentOf(sessionStart), 'session actor ← router publish').toBe(idOf(routerPublish));
  expect(parentOf(allocRequest), 'allocator ← session actor').toBe(idOf(sessionStart));
  expect(descendsFrom(azureEffect, allocRequest), 'Azure effect ← allocator').toBe(true);
  expect(parentOf(azureCall), 'Azure call ← Azure effect').toBe(idOf(azureEffect));
  for (const [i, consume] of outboundConsumes.entries()) {
    expect(consume?.name, `telegram send ${i} ← outbound consume`).toBe(
      'process respawn.out.telegram.{chat}',
    );
    expect(consume?.kind).toBe(SpanKind.CONSUMER);
    expect(descendsFrom(consume!, sessionStart), `outbound consume ${i} ← session actor`).toBe(
      true,
    );
  }
  for (const span of Object.values(hops)) {
    expect(descendsFrom(span, webhook), `${span.name} descends from the webhook span`).toBe(true);
  }

  // The consumer spans carry what an operator filters on.
  expect(sessionStart.attributes).toMatchObject({
    [TraceAttributes.actor]: ActorKinds.session,
    [TraceAttributes.player]: String(PLAYER),
    [TraceAttributes.deliveryCount]: 1,
  });
  expect(sessionStart.attributes[TraceAttributes.streamSeq]).toBeTypeOf('number');
  expect(azureEffect.attributes[TraceAttributes.player]).toBe(String(PLAYER));

  // The instrumentations' spans join the trace: PostgreSQL under the actors' transactions,
  // Redis under the webhook (its rate limits), HTTP under the Bot API call.
  const inTrace = spans.filter((s) => traceOf(s) === traceId);
  const scopes = new Set(inTrace.map((s) => s.instrumentationScope.name));
  expect(scopes).toContain('@opentelemetry/instrumentation-pg');
  expect(scopes).toContain('@opentelemetry/instrumentation-ioredis');
  expect(scopes).toContain('@opentelemetry/instrumentation-http');
  // The bot token in the Bot API's URL never reaches a span.
  expect(JSON.stringify(inTrace.map((s) => s.attributes))).not.toContain(BOT_TOKEN);
});
