/**
 * The Azure effects runner in worker processes (the real entry point, RESPAWN_AZURE_EFFECTS)
 * with a short consumer ack_wait (2 s; the lease renews every 0.5 s, fences at 1.5 s, lives
 * 4 s: actors/roles.ts effectsLeaseTiming):
 *
 * - an effect queued behind the same player's long create is held, not redelivered, however
 *   long the create takes past the ack_wait;
 * - the worker holding the region's lease is killed (SIGKILL) during a create: the other
 *   worker takes the lease over once it expires, the create's effect comes back to it, and the
 *   one VM is finished and reported, with no second VM.
 */
import type { ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocCreateResult,
  AllocDeleteResult,
  AzureDeleteVm,
  Streams,
  ensureTopology,
  outAzureSubject,
} from '../../contracts/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { armEffectsEnv } from '../agent/support.ts';
import {
  eventually,
  exited,
  spawnWorker,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';
import { effectsLeaseOwner, publishCreate } from './support.ts';

const REGION = 'westindia';
/** Each long-running operation's latency: a create is three (disk, NIC, VM), ~9 s. */
const LRO_MS = 3_000;
const ACK_WAIT_S = 2;
/** effectsLeaseTiming(2 s): what a crashed holder keeps the region for. */
const TTL_MS = 4_000;

let env: RuntimeEnv;
let arm: ArmFake;
const children: ChildProcess[] = [];

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.demo] });
  arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-0000000000e2',
    resourceGroup: 'respawn-effects-crash',
    location: REGION,
    quotas: { lowPriorityCores: 16, standardNCASv3_T4Family: 16, cores: 100 },
    lroLatencyMs: LRO_MS,
  });
}, 30_000);
afterAll(async () => {
  for (const c of children) {
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGTERM');
      await exited(c);
    }
  }
  await arm?.stop();
  await env?.dispose();
});

function worker(): ChildProcess {
  const child = spawnWorker(env, {
    ...armEffectsEnv(arm, REGION),
    RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS: String(ACK_WAIT_S),
  });
  children.push(child);
  return child;
}

/** The pid in the live lease's owner (`host/pid#uuid8`), as an operator reads rt_lease. */
async function holderPid(): Promise<number | undefined> {
  const pid = (await effectsLeaseOwner(env.db.knex, REGION))?.match(/\/(\d+)#/)?.[1];
  return pid === undefined ? undefined : Number(pid);
}

const create = (player: string): Promise<string> =>
  publishCreate(env.js, REGION, player, `effects-crash-create-${player}`);

async function results<T>(type: string, decode: (d: Uint8Array) => T): Promise<T[]> {
  const all = await streamMessages(
    env.jsm,
    'RESPAWN_ALLOC_CMD',
    `respawn.alloc.${REGION}.cmd.${type}`,
  );
  return all.map((m) => decode(m.data));
}

const consumer = () => env.jsm.consumers.info(Streams.out.name, `azure-${REGION}`);

it('holds an effect queued behind a create that outlasts the ack_wait', async () => {
  const a = worker();
  await eventually('a holds the region', async () => (await holderPid()) === a.pid, 20_000);
  const vmName = await create('q1');
  await env.js.publish(
    outAzureSubject(REGION),
    AzureDeleteVm.encode({ sessionId: 'q1-1', playerId: 'q1', vmName, nicName: `${vmName}-nic` }),
    { msgID: 'effects-crash-delete-q1' },
  );
  await eventually(
    'the VM was created, then deleted',
    async () => (await results('delete_result', (d) => AllocDeleteResult.decode(d))).length > 0,
    4 * LRO_MS + 15_000,
  );
  expect(
    (await results('create_result', (d) => AllocCreateResult.decode(d))).map((r) => r.ok),
  ).toEqual([true]);
  expect(
    (await results('delete_result', (d) => AllocDeleteResult.decode(d))).map((r) => r.ok),
  ).toEqual([true]);
  expect(arm.state.vm(vmName)).toBeUndefined();
  // The delete waited ~9 s behind the create with a 2 s ack_wait, and was never redelivered.
  const info = await consumer();
  expect(info.config.ack_wait).toBe(ACK_WAIT_S * 1e9);
  // Each delivery takes a consumer sequence: two effects, two deliveries.
  expect(info.delivered.consumer_seq).toBe(2);
  expect(info.num_redelivered).toBe(0);
  expect(info.num_ack_pending).toBe(0);
}, 60_000);

it('finishes a create on the other worker when the lease holder is killed during it', async () => {
  const a = children[0]!;
  const b = worker();
  expect(await holderPid()).toBe(a.pid);
  const vmName = await create('k1');
  await eventually(
    'the VM is being created',
    () => Promise.resolve(arm.state.vm(vmName)?.provisioningState === 'Creating'),
    3 * LRO_MS + 10_000,
  );
  a.kill('SIGKILL');
  const killedAt = performance.now();
  await exited(a);

  await eventually('b holds the region', async () => (await holderPid()) === b.pid, 15_000);
  const takenOverMs = performance.now() - killedAt;
  await eventually(
    'the create is reported',
    async () =>
      (await results('create_result', (d) => AllocCreateResult.decode(d))).some(
        (r) => r.vmName === vmName,
      ),
    LRO_MS + 20_000,
  );
  const finishedMs = performance.now() - killedAt;

  // The region waited for the crashed holder's lease (4 s), not for a minute or more.
  expect(takenOverMs).toBeGreaterThanOrEqual(TTL_MS - 1_500);
  expect(takenOverMs).toBeLessThan(TTL_MS + 5_000);
  expect(finishedMs).toBeLessThan(TTL_MS + LRO_MS + 10_000);
  const reported = (await results('create_result', (d) => AllocCreateResult.decode(d))).filter(
    (r) => r.vmName === vmName,
  );
  expect(reported.map((r) => r.ok)).toEqual([true]);
  // One VM: the create taken over followed the same operation.
  expect(
    arm.state
      .vms()
      .filter((v) => v.tags.purpose === 'respawn-session')
      .map((v) => [v.name, v.provisioningState]),
  ).toEqual([[vmName, 'Succeeded']]);
}, 60_000);
