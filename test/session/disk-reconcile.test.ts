/**
 * Disk reconciliation through the real runtime, the real SDK and the ARM fake, on a manual
 * clock: every round the allocator asks for (its `disks` timer), the effects runner compares
 * the region's Respawn-tagged disks and snapshots with the players' recorded disk state in
 * PostgreSQL. Nothing happens on a first sighting; a round a grace period later that agrees
 * repairs a session whose disk vanished, adopts a disk a session does not record, and reports
 * a disk nobody owns (never deleting it), and a session on a VM is left alone.
 */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocDiskDecided,
  AllocDiskRound,
  SessionAgentReady,
  SessionStart,
  SessionStop,
  Streams,
  TelegramSend,
  cmdSubject,
  commandStreamName,
  ensureTopology,
  type DiskSuspect,
} from '../../contracts/index.ts';
import {
  createAllocatorActor,
  defaultAllocatorConfig,
  type AllocState,
  type Candidate,
} from '../../actors/allocator/index.ts';
import { type AzureEffectsRunner } from '../../actors/allocator/effects.ts';
import { type VmProvider } from '../../actors/allocator/azure/index.ts';
import {
  createSessionActor,
  defaultSessionConfig,
  initialSessionState,
  type SessionState,
} from '../../actors/session/index.ts';
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
const ROUND_MS = 10 * 60_000;
const DAY_MS = 86_400_000;
const zoned = (id: string, zone: string): Candidate => ({
  id,
  tier: 'spot',
  size: 'Standard_NC4as_T4_v3',
  zone,
  cores: 4,
  quotaName: 'lowPriorityCores',
  pricePerHourPaise: 3_000,
});

let env: RuntimeEnv;
let arm: ArmFake;
let provider: VmProvider;
let runner: AzureEffectsRunner;
let worker: Worker;
let clock: ManualClock;
const logs: Record<string, unknown>[] = [];

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  const log = pino(
    { level: 'info' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          logs.push(JSON.parse(line) as Record<string, unknown>);
        }
        cb();
      },
    }),
  );
  const cloud = await startCloud(env, {
    region: REGION,
    fake: {
      subscriptionId: '00000000-0000-0000-0000-000000000004',
      quotas: { lowPriorityCores: 64, standardNCASv3_T4Family: 64, cores: 200 },
    },
    pollIntervalMs: 10,
    concurrency: 8,
    log,
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
        // Rounds move the clock by hours: only the reconciler may change anything meanwhile.
        provisionTimeoutMs: DAY_MS,
        heartbeatLossMs: DAY_MS,
        idleTimeoutMs: DAY_MS,
      }),
      createAllocatorActor({
        ...defaultAllocatorConfig,
        // Zone 1 first: a disk in zone 2 can be attached only by a VM there.
        candidates: [zoned('spotz1', '1'), zoned('spotz2', '2')],
        refreshMs: 60_000,
        reconcileGraceMs: 60_000,
        diskReconcileMs: ROUND_MS,
        diskGraceMs: ROUND_MS,
      }),
    ],
    { clock, timerPollMs: 50 },
  );
  await setUpPlayers();
  await round();
}, 120_000);
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

async function allocState(): Promise<AllocState | undefined> {
  const rows = await env.db
    .knex('rt_state')
    .select<{ state: AllocState }[]>('state')
    .where({ actor: 'alloc', key: REGION });
  return rows[0]?.state;
}

async function reports() {
  const stored = await streamMessages(
    env.jsm,
    commandStreamName(ActorKinds.alloc),
    `respawn.alloc.${REGION}.cmd.disk_round`,
  );
  return stored.map((m) => AllocDiskRound.decode(m.data));
}

async function decisions() {
  const stored = await streamMessages(
    env.jsm,
    Streams.events.name,
    `respawn.alloc.${REGION}.evt.disk_`,
  );
  return stored.map((m) => ({ subject: m.subject, ...AllocDiskDecided.decode(m.data) }));
}

async function diskCommands(player: string): Promise<string[]> {
  const stored = await streamMessages(
    env.jsm,
    commandStreamName(ActorKinds.session),
    `respawn.session.${player}.cmd.disk_`,
  );
  return stored.map((m) => m.subject.split('.')[4] ?? '');
}

async function told(chatId: string): Promise<string[]> {
  const out = await streamMessages(env.jsm, Streams.out.name, `respawn.out.telegram.${chatId}`);
  return out.map((m) => TelegramSend.decode(m.data).text);
}

const key = (s: DiskSuspect): string => `${s.finding} ${s.diskName}`;

/** The `disks` timer fires; the round it starts is reported and remembered by the allocator. */
async function round(): Promise<void> {
  const before = (await reports()).length;
  clock.advance(ROUND_MS + 1_000);
  await eventually('the disk round is reported', async () => (await reports()).length > before);
  const last = (await reports()).at(-1)!;
  await eventually('the allocator remembers what the round suspected', async () => {
    const remembered = (await allocState())?.disks?.suspects ?? [];
    return JSON.stringify(remembered.map(key)) === JSON.stringify(last.suspects.map(key));
  });
}

async function start(player: string, chatId: string): Promise<void> {
  await env.js.publish(
    cmdSubject(ActorKinds.session, player, 'start'),
    SessionStart.encode({ requestedBy: 'player', chatId }),
  );
}

/** The player's session VM, once Azure has it running. */
async function vmOf(player: string) {
  await eventually(`${player}'s VM is up`, async () => {
    const s = await session(player);
    return s?.vmName !== undefined && arm.state.vm(s.vmName)?.provisioningState === 'Succeeded';
  });
  const s = (await session(player))!;
  return { session: s, vm: arm.state.vm(s.vmName!)! };
}

/** A whole session: start, ready (the disk recorded live), stop, VM gone. */
async function playOnce(player: string, chatId: string): Promise<void> {
  await start(player, chatId);
  const { session: s, vm } = await vmOf(player);
  await env.js.publish(
    cmdSubject(ActorKinds.session, player, 'agent_ready'),
    SessionAgentReady.encode({
      sessionId: s.sessionId!,
      vmName: vm.name,
      host: '10.0.0.9',
      port: 47989,
      pin: '1234',
    }),
  );
  await eventually(`${player} ready`, async () => (await session(player))?.phase === 'ready');
  await env.js.publish(
    cmdSubject(ActorKinds.session, player, 'stop'),
    SessionStop.encode({ requestedBy: 'player', reason: 'player' }),
  );
  await eventually(`${player} idle, VM gone`, async () => {
    return (await session(player))?.phase === 'idle' && arm.state.vm(vm.name) === undefined;
  });
  expect(await session(player)).toMatchObject({ diskState: 'live', diskZone: '1' });
}

const tags = (player: string, purpose: string) =>
  ({ player, session: 'none', tier: 'spot', purpose }) as const;

async function setUpPlayers(): Promise<void> {
  // lost: played once; then its disk is deleted behind Respawn's back, with no archive.
  await playOnce('lost', '501');
  await provider.deleteDisk('disk-lost');
  // arch: played once; its disk was snapshotted and deleted, but the session was never told.
  await playOnce('arch', '502');
  await provider.snapshotDisk({
    name: 'snap-disk-arch',
    diskName: 'disk-arch',
    tags: tags('arch', 'respawn-disk-snapshot'),
  });
  await provider.deleteDisk('disk-arch');
  // found: a session that never recorded the disk made for it (a crash in between), in zone 2.
  // Its state row is written here: a status query alone leaves none (nothing changed).
  await env.db.knex('rt_state').insert({
    actor: ActorKinds.session,
    key: 'found',
    version: 1,
    state: JSON.stringify(initialSessionState()),
    updated_at: new Date(),
  });
  await provider.createDisk({
    name: 'disk-found',
    sizeGb: 64,
    zone: '2',
    source: { kind: 'empty' },
    tags: tags('found', 'respawn-disk'),
  });
  // nobody: a tagged disk of a player Respawn has no state for.
  await provider.createDisk({
    name: 'disk-nobody',
    sizeGb: 64,
    source: { kind: 'empty' },
    tags: tags('nobody', 'respawn-disk'),
  });
  // busy: on a VM right now, its new disk attached and not yet recorded (it is at ready).
  await start('busy', '504');
  await vmOf('busy');
  expect(await session('busy')).toMatchObject({ phase: 'provisioning', diskState: 'none' });
}

describe('the first round', () => {
  it('only notes what it finds: nothing is repaired, adopted or reported yet', async () => {
    const first = (await reports())[0]!;
    expect(first.suspects.map(key).sort()).toEqual([
      'missing disk-arch',
      'missing disk-lost',
      'unowned disk-nobody',
      'unrecorded disk-found',
    ]);
    expect(first.counts).toMatchObject({ missing: 2, unrecorded: 1, unowned: 1, acted: 0 });
    expect(await decisions()).toEqual([]);
    for (const p of ['lost', 'arch', 'found', 'busy']) expect(await diskCommands(p)).toEqual([]);
    expect((await session('lost'))?.diskState).toBe('live');
    expect((await session('found'))?.diskState).toBe('none');
    const line = logs.find((l) => l.msg === 'disk reconciliation round');
    expect(line).toMatchObject({ level: 30, disks: 3, missing: 2, unrecorded: 1, unowned: 1 });
  });
});

describe('a round a grace period later', () => {
  beforeAll(() => round(), 60_000);

  it('a live disk deleted out of band, with no archive: none, the player told, the next play makes a fresh disk', async () => {
    await eventually('lost is repaired', async () => (await session('lost'))?.diskState === 'none');
    const s = (await session('lost'))!;
    expect(s.diskZone).toBeUndefined();
    expect((await told('501')).at(-1)).toMatch(/disk was lost.*fresh disk/);
    expect(await diskCommands('lost')).toEqual(['disk_missing']);
    const decided = (await decisions()).filter((d) => d.playerId === 'lost');
    expect(decided.map((d) => d.subject)).toEqual([`respawn.alloc.${REGION}.evt.disk_missing`]);
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 40, decision: 'disk_missing', diskName: 'disk-lost' }),
    );

    await start('lost', '501');
    const { vm } = await vmOf('lost');
    expect(vm.dataDisks.map((d) => d.name)).toEqual(['disk-lost']);
    expect(arm.state.disk('disk-lost')?.creationData.createOption).toBe('Empty');
  });

  it('a live disk gone with its snapshot left: archived, and the next play restores it', async () => {
    await eventually(
      'arch is repaired',
      async () => (await session('arch'))?.diskState === 'archived',
    );
    expect(await diskCommands('arch')).toEqual(['disk_missing']);
    // Nothing was lost: no message now; the next start says it restores.
    expect((await told('502')).some((t) => /lost/.test(t))).toBe(false);

    await start('arch', '502');
    const { vm } = await vmOf('arch');
    expect(vm.dataDisks.map((d) => d.name)).toEqual(['disk-arch']);
    expect(arm.state.disk('disk-arch')?.creationData.sourceResourceId).toMatch(
      /\/snapshots\/snap-disk-arch$/,
    );
    expect((await told('502')).some((t) => t.includes('Restoring your disk'))).toBe(true);
  });

  it('a tagged disk the state does not know: adopted in its zone, the next play attaches it, no second disk', async () => {
    await eventually(
      'found is adopted',
      async () => (await session('found'))?.diskState === 'live',
    );
    expect(await session('found')).toMatchObject({ diskZone: '2', region: REGION });
    expect(await diskCommands('found')).toEqual(['disk_found']);
    const before = arm.state.disk('disk-found')!;

    await start('found', '503');
    const { vm } = await vmOf('found');
    // The disk lives in zone 2: a VM in zone 1 (the first candidate) could not attach it.
    expect(vm.zone).toBe('2');
    expect(vm.dataDisks.map((d) => d.name)).toEqual(['disk-found']);
    expect(arm.state.disk('disk-found')?.uniqueId).toBe(before.uniqueId);
    expect(arm.state.disks().filter((d) => d.tags.player === 'found')).toHaveLength(1);
  });

  it('a disk with no player: reported (event and warning), not deleted', async () => {
    await eventually('the unowned disk is reported', async () =>
      (await decisions()).some((d) => d.diskName === 'disk-nobody'),
    );
    const decided = (await decisions()).filter((d) => d.diskName === 'disk-nobody');
    expect(decided).toEqual([
      expect.objectContaining({
        subject: `respawn.alloc.${REGION}.evt.disk_unowned`,
        decision: 'disk_unowned',
        playerId: 'nobody',
        detail: 'player nobody has no session state',
      }),
    ]);
    expect(logs).toContainEqual(
      expect.objectContaining({ level: 40, decision: 'disk_unowned', diskName: 'disk-nobody' }),
    );
    expect(arm.state.disk('disk-nobody')).toBeDefined();
    // No session actor was made for it.
    expect(await session('nobody')).toBeUndefined();
    expect(await diskCommands('nobody')).toEqual([]);
  });

  it('changes nothing for a session on its VM, whose new disk is not recorded yet', async () => {
    const last = (await reports()).at(-1)!;
    expect(last.counts).toMatchObject({ acted: 4 });
    expect(last.suspects.map((s) => s.playerId)).not.toContain('busy');
    expect(await diskCommands('busy')).toEqual([]);
    const s = (await session('busy'))!;
    expect(s).toMatchObject({ phase: 'provisioning', diskState: 'none' });
    expect(s.diskZone).toBe('1');
    expect(arm.state.vm(s.vmName!)?.dataDisks.map((d) => d.name)).toEqual(['disk-busy']);
    expect(arm.state.disk('disk-busy')).toBeDefined();
  });
});
