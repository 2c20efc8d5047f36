/**
 * An Azure effect that Azure throttles (429 with Retry-After) is tried again after the time
 * Azure asked for, not after the runner's fixed 5 s: here a usage refresh (the allocator's
 * quota), through the real SDK against the ARM fake. An effect the runner cannot read is
 * dead-lettered as every dead letter is: with why, from where and by whom, and counted.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocUsage,
  AzureRefresh,
  HeaderNames,
  Streams,
  ensureTopology,
  outAzureSubject,
} from '../../contracts/index.ts';
import { Registry } from 'prom-client';
import { EFFECT_RETRY_MS } from '../../actors/allocator/effects.ts';
import { deadLetterCounter } from '../../actors/runtime/metrics.ts';
import { startCloud, type CloudEnv } from '../support/cloud-env.ts';
import {
  eventually,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

const REGION = 'eastindia';
const RETRY_AFTER_S = 8;
let env: RuntimeEnv;
let cloud: CloudEnv;
const registry = new Registry();

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.alloc] });
  cloud = await startCloud(env, { region: REGION, deadLetters: deadLetterCounter(registry) });
}, 30_000);
afterAll(async () => {
  await cloud?.stop();
  await env?.dispose();
});

it('retries a throttled refresh after Retry-After', async () => {
  expect(RETRY_AFTER_S * 1_000).toBeGreaterThan(EFFECT_RETRY_MS + 2_000);
  cloud.arm.injectThrottle({ resource: 'usages', retryAfterSeconds: RETRY_AFTER_S });
  const sent = performance.now();
  await env.js.publish(
    outAzureSubject(REGION),
    AzureRefresh.encode({ usage: true, inventory: false }),
    { msgID: 'effects-retry-refresh' },
  );
  const reports = async () =>
    (await streamMessages(env.jsm, 'RESPAWN_ALLOC_CMD', `respawn.alloc.${REGION}.cmd.usage`)).map(
      (m) => AllocUsage.decode(m.data),
    );
  await eventually('the usage is reported', async () => (await reports()).length > 0, 30_000);
  const tookMs = performance.now() - sent;
  // Not before Azure's time (the fixed retry would have come at ~5 s), nor much after it.
  expect(tookMs).toBeGreaterThanOrEqual(RETRY_AFTER_S * 1_000 - 200);
  expect(tookMs).toBeLessThan(RETRY_AFTER_S * 1_000 + 10_000);
  expect((await reports()).length).toBe(1);
}, 40_000);

it('dead-letters an effect it cannot read with the Respawn-Dlq headers, and counts it', async () => {
  const garbage = new TextEncoder().encode('{"type":"azure.create_vm.v1","bogus":1}');
  await env.js.publish(outAzureSubject(REGION), garbage, { msgID: 'effects-garbage-1' });
  const dead = async () => streamMessages(env.jsm, Streams.dlq.name, 'respawn.dlq.alloc.');
  await eventually('the effect is dead-lettered', async () => (await dead()).length === 1);
  const [d] = await dead();
  expect(d!.subject).toBe('respawn.dlq.alloc.invalid_payload');
  expect(d!.headers).toMatchObject({
    [HeaderNames.dlqCode]: 'invalid_payload',
    [HeaderNames.dlqActor]: 'azure-effects',
    [HeaderNames.dlqSubject]: outAzureSubject(REGION),
    [HeaderNames.dlqMsgId]: 'effects-garbage-1',
  });
  expect(d!.headers[HeaderNames.dlqReason]).not.toBe('');
  const counted = await registry.getSingleMetric('respawn_actor_dead_letters_total')!.get();
  expect(counted.values).toEqual([
    expect.objectContaining({
      labels: { actor: 'azure-effects', code: 'invalid_payload' },
      value: 1,
    }),
  ]);
}, 30_000);
