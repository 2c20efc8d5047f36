/**
 * An Azure effect that Azure throttles (429 with Retry-After) is tried again after the time
 * Azure asked for, not after the runner's fixed 5 s: here a usage refresh (the allocator's
 * quota), through the real SDK against the ARM fake.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocUsage,
  AzureRefresh,
  ensureTopology,
  outAzureSubject,
} from '../../contracts/index.ts';
import { EFFECT_RETRY_MS } from '../../actors/allocator/effects.ts';
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

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.alloc] });
  cloud = await startCloud(env, { region: REGION });
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
