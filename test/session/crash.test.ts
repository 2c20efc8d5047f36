/**
 * A worker process (session + allocator, the real entry point) is killed with SIGKILL while
 * the VM it asked for is still being created in Azure (the ARM fake, a slow long-running
 * operation, the real SDK in this process's effects runner). A new worker takes over: no
 * second VM is created, and the session still reaches `ready` when the agent reports.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocCreateResult,
  AzureCreateVm,
  SessionAdmission,
  SessionAgentReady,
  SessionStart,
  Streams,
  cmdSubject,
  ensureTopology,
} from '../../contracts/index.ts';
import { type AzureEffectsRunner } from '../../actors/allocator/effects.ts';

import type { SessionState } from '../../actors/session/index.ts';
import { type ArmFake } from '../../deploy/fakes/arm/index.ts';
import {
  eventually,
  exited,
  spawnWorker,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';
import { startCloud } from '../support/cloud-env.ts';

const REGION = 'centralindia';
const PLAYER = 'crash1';
const CREATE_MS = 4_000;
let env: RuntimeEnv;
let arm: ArmFake;
let runner: AzureEffectsRunner;
const children: ChildProcess[] = [];

const worker = (): ChildProcess => {
  const child = spawnWorker(env, { RESPAWN_ACTORS: 'session,alloc', RESPAWN_MIGRATE: 'true' });
  children.push(child);
  return child;
};

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  const cloud = await startCloud(env, {
    region: REGION,
    fake: { subscriptionId: '00000000-0000-0000-0000-000000000001', lroLatencyMs: CREATE_MS },
    pollIntervalMs: 50,
    concurrency: 8,
  });
  arm = cloud.arm;
  runner = cloud.runner;
}, 30_000);
afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await exited(c);
    }
  }
  await runner?.stop();
  await arm?.stop();
  await env?.dispose();
});

async function session(): Promise<SessionState | undefined> {
  const rows = await env.db
    .knex('rt_state')
    .select<{ state: SessionState }[]>('state')
    .where({ actor: 'session', key: PLAYER });
  return rows[0]?.state;
}
const sessionVms = () => arm.state.vms().filter((v) => v.tags.purpose === 'respawn-session');

it('creates no second VM when the worker is killed during a create, and still gets ready', async () => {
  const first = worker();
  await env.js.publish(
    cmdSubject(ActorKinds.session, PLAYER, 'start'),
    SessionStart.encode({ requestedBy: 'player' }),
  );
  // The worker's session actor asks billing for admission; this test answers for billing.
  await eventually('the session asks for admission', async () => {
    return (await session())?.phase === 'starting';
  });
  await env.js.publish(
    cmdSubject(ActorKinds.session, PLAYER, 'admission'),
    SessionAdmission.encode({
      sessionId: `${PLAYER}-1`,
      allowed: true,
      balancePaise: 100_000,
      requiredPaise: 3_000,
    }),
  );
  await eventually('the VM is being created in Azure', () =>
    Promise.resolve(sessionVms().some((v) => v.provisioningState === 'Creating')),
  );
  const creating = sessionVms()[0]!;
  expect((await session())?.phase).toBe('provisioning');

  first.kill('SIGKILL');
  await exited(first);
  // Still creating: the kill happened while the create was in flight.
  expect(arm.state.vm(creating.name)?.provisioningState).toBe('Creating');

  worker();
  await eventually(
    'the allocator saw the create succeed',
    async () => {
      const results = await streamMessages(
        env.jsm,
        'RESPAWN_ALLOC_CMD',
        `respawn.alloc.${REGION}.cmd.create_result`,
      );
      if (results.length === 0) return false;
      const r = await env.db
        .knex('rt_state')
        .select<{ state: { reservations: Record<string, { status: string }> } }[]>('state')
        .where({ actor: 'alloc', key: REGION });
      return r[0]?.state.reservations[creating.name]?.status === 'running';
    },
    20_000,
  );
  const results = (
    await streamMessages(env.jsm, 'RESPAWN_ALLOC_CMD', `respawn.alloc.${REGION}.cmd.create_result`)
  ).map((m) => AllocCreateResult.decode(m.data));
  expect(results.map((r) => [r.vmName, r.ok])).toEqual([[creating.name, true]]);

  await env.js.publish(
    cmdSubject(ActorKinds.session, PLAYER, 'agent_ready'),
    SessionAgentReady.encode({
      sessionId: `${PLAYER}-1`,
      vmName: creating.name,
      host: '10.0.0.9',
      port: 47989,
      pin: '2468',
    }),
  );
  await eventually('ready on the one VM', async () => (await session())?.phase === 'ready');
  expect((await session())?.vmName).toBe(creating.name);

  // One VM in Azure, one create asked for, one PUT of that VM.
  expect(sessionVms().map((v) => [v.name, v.provisioningState])).toEqual([
    [creating.name, 'Succeeded'],
  ]);
  const creates = (
    await streamMessages(env.jsm, Streams.out.name, `respawn.out.azure.${REGION}`)
  ).filter((m) => m.headers['Respawn-Type'] === AzureCreateVm.type);
  expect(creates.map((m) => AzureCreateVm.decode(m.data).vmName)).toEqual([creating.name]);
}, 60_000);
