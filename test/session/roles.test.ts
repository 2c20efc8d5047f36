/**
 * The production worker entry point hosting everything a session needs besides billing:
 * session and allocator actors, the agent ingress router and the Azure effects runner
 * (RESPAWN_INGRESS, RESPAWN_AZURE_EFFECTS), talking to the ARM fake through the real SDK.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AgentReport,
  AllocUsage,
  SessionStart,
  cmdSubject,
  ensureTopology,
  ingressSubject,
} from '../../contracts/index.ts';
import type { SessionState } from '../../actors/session/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import {
  eventually,
  exited,
  spawnWorker,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let arm: ArmFake;
let worker: ChildProcess;

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-000000000002',
    resourceGroup: 'respawn-roles',
    location: 'centralindia',
    quotas: { lowPriorityCores: 8, standardNCASv3_T4Family: 8, cores: 100 },
    lroPolls: 1,
  });
  // The worker migrates the session and allocator tables itself.
  worker = spawnWorker(env, {
    RESPAWN_ACTORS: 'session,alloc',
    RESPAWN_MIGRATE: 'true',
    RESPAWN_SESSION_ADMISSION: 'false',
    RESPAWN_INGRESS: 'agent',
    RESPAWN_AZURE_EFFECTS: 'true',
    AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
    AZURE_RESOURCE_GROUP: arm.resourceGroup,
    AZURE_SSH_PUBLIC_KEY: 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test',
    AZURE_ARM_ENDPOINT: arm.url,
    AZURE_ARM_CA_FILE: arm.caCertPath,
  });
});
afterAll(async () => {
  worker?.kill('SIGTERM');
  if (worker !== undefined) await exited(worker);
  await arm?.stop();
  await env?.dispose();
});

async function session(): Promise<SessionState | undefined> {
  const rows = await env.db
    .knex('rt_state')
    .select<{ state: SessionState }[]>('state')
    .where({ actor: 'session', key: 'r1' });
  return rows[0]?.state;
}

it('runs a session to ready from the worker entry point with its ingress and Azure roles', async () => {
  await env.js.publish(
    cmdSubject(ActorKinds.alloc, 'centralindia', 'usage'),
    AllocUsage.encode({
      at: new Date().toISOString(),
      usages: [
        { name: 'lowPriorityCores', current: 0, limit: 8 },
        { name: 'standardNCASv3_T4Family', current: 0, limit: 8 },
      ],
    }),
  );
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'r1', 'start'),
    SessionStart.encode({ requestedBy: 'player' }),
  );
  await eventually(
    'the VM created in the ARM fake by the worker’s effects runner',
    async () => {
      const s = await session();
      return s?.vmName !== undefined && arm.state.vm(s.vmName)?.provisioningState === 'Succeeded';
    },
    45_000,
  );
  const vmName = (await session())!.vmName!;
  // What the gateway stores after checking the agent's token.
  await env.js.publish(
    ingressSubject('agent'),
    AgentReport.encode({
      id: 'rep-1',
      vmName,
      sessionId: 'r1-1',
      playerId: 'r1',
      kind: 'ready',
      at: new Date().toISOString(),
      host: '10.0.0.9',
      port: 47989,
      pin: '2468',
    }),
    { msgID: 'agent-rep-1' },
  );
  await eventually(
    'ready through the agent ingress router',
    async () => (await session())?.phase === 'ready',
    30_000,
  );
  expect((await session())!.connect).toEqual({ host: '10.0.0.9', port: 47989, pin: '2468' });
});
