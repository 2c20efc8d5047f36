/**
 * A player's whole session through the real runtime, the real Azure SDK and the ARM fake:
 * start → Spot VM with the player's disk → ready → Spot eviction → resumed on a new VM (On-Demand:
 * the evicted Spot candidate is cold) with the same disk → stop → VM gone, disk kept. And a capacity error falling back to On-Demand.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocCreateResult,
  SessionAgentReady,
  SessionPreempt,
  SessionStart,
  SessionStop,
  Streams,
  TelegramSend,
  cmdSubject,
  ensureTopology,
} from '../../contracts/index.ts';
import { createAllocatorActor, defaultAllocatorConfig } from '../../actors/allocator/index.ts';
import { type AzureEffectsRunner } from '../../actors/allocator/effects.ts';

import {
  createSessionActor,
  defaultSessionConfig,
  type SessionState,
} from '../../actors/session/index.ts';
import type { Worker } from '../../actors/runtime/index.ts';
import { startActorWorker } from '../support/actor-worker.ts';
import { type ArmFake } from '../../deploy/fakes/arm/index.ts';
import {
  eventually,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';
import { startCloud } from '../support/cloud-env.ts';

const REGION = 'centralindia';
let env: RuntimeEnv;
let arm: ArmFake;
let worker: Worker;
let runner: AzureEffectsRunner;

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  const cloud = await startCloud(env, {
    region: REGION,
    fake: { subscriptionId: '00000000-0000-0000-0000-000000000001' },
    pollIntervalMs: 10,
    concurrency: 8,
  });
  arm = cloud.arm;
  runner = cloud.runner;
  worker = await startActorWorker(
    env,
    [
      createSessionActor({
        ...defaultSessionConfig,
        requireAdmission: false,
        // Unused disks are archived two seconds after the session ends (days in production).
        diskIdleMs: 2_000,
        diskWarningMs: 1_000,
      }),
      // An eviction makes Spot cold for everyone; two seconds here (ten minutes by default),
      // so the next test starts with Spot warm again.
      createAllocatorActor({ ...defaultAllocatorConfig, coldMs: 2_000 }),
    ],
    { timerPollMs: 100 },
  );
});
afterAll(async () => {
  await worker?.stop();
  await runner?.stop();
  await arm?.stop();
  await env?.dispose();
});

async function session(player: string): Promise<SessionState | undefined> {
  const rows = await env.db
    .knex('rt_state')
    .select<{ state: SessionState }[]>('state')
    .where({ actor: 'session', key: player });
  return rows[0]?.state;
}
async function told(chatId: string): Promise<string[]> {
  const out = await streamMessages(env.jsm, Streams.out.name, `respawn.out.telegram.${chatId}`);
  return out.map((m) => TelegramSend.decode(m.data).text);
}
const sessionVms = () => arm.state.vms().filter((v) => v.tags.purpose === 'respawn-session');

it('plays a session end to end, surviving a Spot eviction with the same disk', async () => {
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p1', 'start'),
    SessionStart.encode({ requestedBy: 'player', chatId: '42' }),
  );
  await eventually('a Spot VM with the player’s disk', async () => {
    const s = await session('p1');
    const vm = s?.vmName === undefined ? undefined : arm.state.vm(s.vmName);
    return vm?.provisioningState === 'Succeeded';
  });
  const first = (await session('p1'))!;
  const vm1 = arm.state.vm(first.vmName!)!;
  expect(first).toMatchObject({ phase: 'provisioning', tier: 'spot', pricePerHourPaise: 3_000 });
  expect(vm1).toMatchObject({ priority: 'Spot', size: 'Standard_NC4as_T4_v3' });
  expect(vm1.tags).toMatchObject({
    player: 'p1',
    session: 'p1-1',
    tier: 'spot',
    purpose: 'respawn-session',
    region: REGION,
  });
  expect(vm1.dataDisks.map((d) => d.name)).toEqual(['disk-p1']);

  // The VM agent reports the streaming host ready.
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p1', 'agent_ready'),
    SessionAgentReady.encode({
      sessionId: 'p1-1',
      vmName: vm1.name,
      host: '10.0.0.4',
      port: 47989,
      pin: '4321',
    }),
  );
  await eventually('ready', async () => (await session('p1'))?.phase === 'ready');

  // Azure announces a Preempt; the agent relays it.
  const eventId = arm.preempt(vm1.name, { noticeMs: 50 });
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p1', 'preempt'),
    SessionPreempt.encode({ sessionId: 'p1-1', vmName: vm1.name, eventId }),
  );
  await eventually('resumed on a new VM, the old one gone', async () => {
    const s = await session('p1');
    const vm = s?.vmName === undefined ? undefined : arm.state.vm(s.vmName);
    return (
      s?.phase === 'provisioning' &&
      s.vmName !== vm1.name &&
      vm?.provisioningState === 'Succeeded' &&
      arm.state.vm(vm1.name) === undefined
    );
  });
  const second = (await session('p1'))!;
  expect(second.allocation).toBe(2);
  // The Spot candidate that lost the VM is cold: the resume is On-Demand, its price told.
  expect(second).toMatchObject({ tier: 'on_demand', pricePerHourPaise: 9_000 });
  expect(arm.state.vm(second.vmName!)!.priority).toBe('Regular');
  expect(arm.state.vm(second.vmName!)!.dataDisks.map((d) => d.name)).toEqual(['disk-p1']);
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p1', 'agent_ready'),
    SessionAgentReady.encode({
      sessionId: 'p1-1',
      vmName: second.vmName!,
      host: '10.0.0.5',
      port: 47989,
      pin: '8765',
    }),
  );
  await eventually('ready again', async () => (await session('p1'))?.phase === 'ready');

  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p1', 'stop'),
    SessionStop.encode({ requestedBy: 'player', reason: 'player' }),
  );
  await eventually('stopped, no VM left, disk kept', async () => {
    return (await session('p1'))?.phase === 'idle' && sessionVms().length === 0;
  });
  expect(arm.state.disk('disk-p1')).toBeDefined();
  const texts = await told('42');
  expect(texts.some((t) => t.includes('Spot GPU rig at ₹30.00/hour'))).toBe(true);
  expect(texts.some((t) => t.includes('disk is safe'))).toBe(true);
  expect(texts.some((t) => t.includes('Back online'))).toBe(true);
  expect(texts.at(-1)).toMatch(/Session stopped/);
});

it('falls back to On-Demand when Spot has no capacity, and tells the player the price', async () => {
  // AllocationFailed fails the long-running operation and leaves a Failed VM holding the
  // player's disk: the fallback works only if that VM is deleted first.
  arm.setCapacity([{ priority: 'Spot', available: 0, code: 'AllocationFailed' }]);
  // Spot warm again since the eviction above (coldMs 2 s).
  await new Promise((r) => setTimeout(r, 2_000));
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p2', 'start'),
    SessionStart.encode({ requestedBy: 'player', chatId: '43' }),
  );
  await eventually('an On-Demand VM', async () => {
    const s = await session('p2');
    const vm = s?.vmName === undefined ? undefined : arm.state.vm(s.vmName);
    return s?.tier === 'on_demand' && vm?.provisioningState === 'Succeeded';
  });
  const s = (await session('p2'))!;
  expect(arm.state.vm(s.vmName!)!.priority).toBe('Regular');
  expect((await told('43')).some((t) => t.includes('an On-Demand GPU rig at ₹90.00/hour'))).toBe(
    true,
  );
  expect(sessionVms().filter((v) => v.priority === 'Spot')).toEqual([]);
  // The failed Spot VM was deleted before the On-Demand create: no create met a held disk.
  const results = (
    await streamMessages(
      env.jsm,
      'RESPAWN_ALLOC_CMD',
      'respawn.alloc.centralindia.cmd.create_result',
    )
  )
    .map((m) => AllocCreateResult.decode(m.data))
    .filter((r) => r.sessionId === 'p2-1');
  expect(results.map((r) => r.error?.kind ?? 'ok')).toEqual(['capacity', 'ok']);
});

it('archives an unused disk to a snapshot after a warning, and restores it on the next play', async () => {
  const play = async (sessionId: string): Promise<string> => {
    await env.js.publish(
      cmdSubject(ActorKinds.session, 'p3', 'start'),
      SessionStart.encode({ requestedBy: 'player', chatId: '44' }),
    );
    await eventually('a VM', async () => {
      const s = await session('p3');
      return (
        s?.sessionId === sessionId &&
        s.vmName !== undefined &&
        arm.state.vm(s.vmName)?.provisioningState === 'Succeeded'
      );
    });
    const vmName = (await session('p3'))!.vmName!;
    await env.js.publish(
      cmdSubject(ActorKinds.session, 'p3', 'agent_ready'),
      SessionAgentReady.encode({ sessionId, vmName, host: '10.0.0.7', port: 47989, pin: '1111' }),
    );
    await eventually('ready', async () => (await session('p3'))?.phase === 'ready');
    return vmName;
  };
  arm.setCapacity([]);
  await play('p3-1');
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p3', 'stop'),
    SessionStop.encode({ requestedBy: 'player', reason: 'player' }),
  );
  await eventually(
    'archived: snapshot kept, disk deleted',
    async () => {
      const s = await session('p3');
      return s?.diskState === 'archived' && arm.state.disk('disk-p3') === undefined;
    },
    20_000,
  );
  expect(arm.state.snapshots().map((x) => x.name)).toContain('snap-disk-p3');
  // The player's, made in this region; no session or tier is its own.
  const snapshotP3 = arm.state.snapshots().find((x) => x.name === 'snap-disk-p3')!;
  expect(snapshotP3.tags).toMatchObject({
    player: 'p3',
    purpose: 'respawn-disk-snapshot',
    region: REGION,
  });
  expect(snapshotP3.tags.session).toBeUndefined();
  expect(snapshotP3.tags.tier).toBeUndefined();
  const before = await told('44');
  const warned = before.findIndex((t) => t.includes('will be archived'));
  const archived = before.findIndex((t) => t.includes('Your disk was archived'));
  expect(warned).toBeGreaterThan(-1);
  expect(archived).toBeGreaterThan(warned);

  const vm = await play('p3-2');
  const restored = arm.state.disk('disk-p3');
  expect(restored).toBeDefined();
  expect(arm.state.vm(vm)!.dataDisks.map((d) => d.name)).toEqual(['disk-p3']);
  expect((await told('44')).some((t) => t.includes('Restoring your disk'))).toBe(true);
  expect((await session('p3'))!.diskState).toBe('live');
  // Restored: the snapshot is deleted (the disk holds the data).
  expect(arm.state.snapshots().map((x) => x.name)).not.toContain('snap-disk-p3');

  // Archived again: the snapshot is of the restored disk, not a stale one of the first.
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'p3', 'stop'),
    SessionStop.encode({ requestedBy: 'player', reason: 'player' }),
  );
  await eventually(
    'archived again',
    async () => {
      const s = await session('p3');
      return s?.diskState === 'archived' && arm.state.disk('disk-p3') === undefined;
    },
    20_000,
  );
  const snap = arm.state.snapshots().find((x) => x.name === 'snap-disk-p3');
  expect(snap?.sourceUniqueId).toBe(restored!.uniqueId);
});
