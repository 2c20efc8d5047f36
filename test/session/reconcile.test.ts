/**
 * The reconciler: with each periodic refresh the allocator lists Respawn's VMs in Azure and
 * compares them with its reservations. A VM left running by a crash (here: created directly
 * in the ARM fake through the real SDK, tagged as a session VM) is deleted once two
 * inventories a grace period apart agree it is an orphan; a live session's VM is left
 * alone; a session whose VM vanished from Azure is resumed on a new one. On a manual clock.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocDecided,
  SessionStart,
  Streams,
  cmdSubject,
  ensureTopology,
} from '../../contracts/index.ts';
import { createAllocatorActor, defaultAllocatorConfig } from '../../actors/allocator/index.ts';
import { type AzureEffectsRunner } from '../../actors/allocator/effects.ts';
import { type VmProvider } from '../../actors/allocator/azure/index.ts';
import {
  createSessionActor,
  defaultSessionConfig,
  type SessionState,
} from '../../actors/session/index.ts';
import type { AllocState } from '../../actors/allocator/index.ts';
import { manualClock, type ManualClock, type Worker } from '../../actors/runtime/index.ts';
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
const REFRESH_MS = 60_000;
let env: RuntimeEnv;
let arm: ArmFake;
let provider: VmProvider;
let runner: AzureEffectsRunner;
let worker: Worker;
let clock: ManualClock;

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  const cloud = await startCloud(env, {
    region: REGION,
    fake: { subscriptionId: '00000000-0000-0000-0000-000000000003' },
    pollIntervalMs: 10,
    concurrency: 4,
  });
  arm = cloud.arm;
  runner = cloud.runner;
  provider = cloud.provider;
  clock = manualClock(new Date('2026-11-26T10:00:00Z'));
  worker = await startActorWorker(
    env,
    [
      createSessionActor({
        ...defaultSessionConfig,
        requireAdmission: false,
      }),
      createAllocatorActor({
        ...defaultAllocatorConfig,
        refreshMs: REFRESH_MS,
        reconcileGraceMs: REFRESH_MS,
      }),
    ],
    { clock, timerPollMs: 50 },
  );
}, 30_000);
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

async function decisions(): Promise<{ decision: string; vmName?: string | undefined }[]> {
  return (await streamMessages(env.jsm, Streams.events.name, `respawn.alloc.${REGION}.evt.`)).map(
    (m) => AllocDecided.decode(m.data),
  );
}

async function allocState(): Promise<AllocState> {
  const rows = await env.db
    .knex('rt_state')
    .select<{ state: AllocState }[]>('state')
    .where({ actor: 'alloc', key: REGION });
  return rows[0]!.state;
}

/** Fires the allocator's refresh timer; the usage and inventory it brings are handled. */
function refresh(): void {
  clock.advance(REFRESH_MS + 1_000);
}

it('deletes an orphan VM after the grace period, keeps the live session’s VM, and resumes a session whose VM vanished', async () => {
  // A live session: its VM is explained by a reservation.
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'live', 'start'),
    SessionStart.encode({ requestedBy: 'player' }),
  );
  await eventually('the live session’s VM is up', async () => {
    const s = await session('live');
    return s?.vmName !== undefined && arm.state.vm(s.vmName)?.provisioningState === 'Succeeded';
  });
  const liveVm = (await session('live'))!.vmName!;
  // The first refresh (asked for at the first request) has been handled: its timer is set.
  await eventually('the refresh timer is set', async () => {
    const r = await env.db.knex('rt_timer').where({ actor: 'alloc', key: REGION, name: 'refresh' });
    return r.length === 1;
  });

  // A VM a crash left behind: Respawn's tags, no reservation, no live session.
  const orphan = 'vm-ghost-7-a1-spotnc4';
  const tags = {
    player: 'ghost',
    session: 'ghost-7',
    tier: 'spot' as const,
    purpose: 'respawn-session',
  };
  await provider.createDisk({
    name: 'disk-ghost',
    sizeGb: 64,
    source: { kind: 'empty' },
    tags: { ...tags, purpose: 'respawn-disk' },
  });
  await provider.ensureNic({ name: `${orphan}-nic`, tags });
  await provider.createOrUpdateVm({
    name: orphan,
    nicName: `${orphan}-nic`,
    size: 'Standard_NC4as_T4_v3',
    tier: 'spot',
    dataDiskName: 'disk-ghost',
    image: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
    admin: { username: 'respawn', sshPublicKey: 'ssh-ed25519 AAAA test' },
    tags,
  });
  expect(arm.state.vm(orphan)?.provisioningState).toBe('Succeeded');
  expect((await decisions()).filter((d) => d.decision === 'orphan')).toEqual([]);

  // The refresh timer fires; the inventory it brings names the orphan: noted, not deleted.
  refresh();
  await eventually(
    'the orphan is noted',
    async () => (await allocState()).orphans?.[orphan] !== undefined,
  );
  expect(arm.state.vm(orphan)?.provisioningState).toBe('Succeeded');
  // A grace period later it is still there and still unexplained: deleted.
  refresh();
  await eventually('the orphan is deleted', () =>
    Promise.resolve(arm.state.vm(orphan) === undefined),
  );

  const orphans = (await decisions()).filter((d) => d.decision === 'orphan');
  expect(orphans.map((d) => d.vmName)).toEqual([orphan]);
  expect(arm.state.vm(liveVm)?.provisioningState).toBe('Succeeded');
  expect(arm.state.nic(`${orphan}-nic`)).toBeUndefined();
  // The player's disk is never the reconciler's to delete.
  expect(arm.state.disk('disk-ghost')).toBeDefined();
  expect((await session('live'))?.phase).toBe('provisioning');

  // The live session's VM vanishes from Azure behind Respawn's back (deleted, or evicted
  // with no notice): two inventories later the session is on a new VM with the same disk.
  const before = (await session('live'))!;
  const disks = arm.state.vm(liveVm)!.dataDisks.map((d) => d.name);
  expect(disks).toHaveLength(1);
  await provider.deleteVm(liveVm, { nicName: `${liveVm}-nic` });
  refresh();
  await eventually(
    'the missing VM is noted',
    async () => (await allocState()).missing?.[liveVm] !== undefined,
  );
  refresh();
  await eventually('the session is on a new VM', async () => {
    const s = await session('live');
    return (
      s?.vmName !== undefined &&
      s.vmName !== liveVm &&
      arm.state.vm(s.vmName)?.provisioningState === 'Succeeded'
    );
  });
  const after = (await session('live'))!;
  expect(after.allocation).toBe(before.allocation + 1);
  // Same disk: the player's, which the vanished VM's deletion left alone.
  expect(arm.state.vm(after.vmName!)!.dataDisks.map((d) => d.name)).toEqual(disks);
  const released = (await decisions()).filter(
    (d) => d.decision === 'released' && d.vmName === liveVm,
  );
  expect(released).toHaveLength(1);
}, 60_000);

it('deletes a running VM whose session record was removed, and never a live session’s', async () => {
  await env.js.publish(
    cmdSubject(ActorKinds.session, 'lost', 'start'),
    SessionStart.encode({ requestedBy: 'player' }),
  );
  await eventually('the lost session’s VM is up', async () => {
    const s = await session('lost');
    return s?.vmName !== undefined && arm.state.vm(s.vmName)?.provisioningState === 'Succeeded';
  });
  const lostVm = (await session('lost'))!.vmName!;
  await eventually(
    'its reservation is running',
    async () => (await allocState()).reservations[lostVm]?.status === 'running',
  );
  const liveVm = (await session('live'))!.vmName!;
  // An operator's mistake, or a restore from an old backup: the session's record is gone.
  await env.db.knex('rt_state').where({ actor: 'session', key: 'lost' }).delete();

  // Past the grace period the reconciler asks each running VM's session; the one with no
  // record gives its VM back, and it is deleted (its NIC too, never the player's disk).
  refresh();
  await eventually('the VM nobody owns is deleted', () =>
    Promise.resolve(arm.state.vm(lostVm) === undefined),
  );
  expect(arm.state.nic(`${lostVm}-nic`)).toBeUndefined();
  expect(arm.state.disk('disk-lost')).toBeDefined();
  // The fake has deleted it; the allocator drops the reservation when the effect reports back.
  await eventually(
    'the reservation is dropped',
    async () => (await allocState()).reservations[lostVm] === undefined,
  );
  const released = (await decisions()).filter(
    (d) => d.decision === 'released' && d.vmName === lostVm,
  );
  expect(released).toHaveLength(1);
  // The live session was asked too, and kept its VM.
  expect(arm.state.vm(liveVm)?.provisioningState).toBe('Succeeded');
  expect((await allocState()).reservations[liveVm]?.status).toBe('running');
}, 60_000);
