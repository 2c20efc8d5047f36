/**
 * 2,000 players press start within a second (20% of them twice) against the real runtime:
 * the session actors and the region's allocator on a private nats-server and a fresh
 * database, with Azure's quota reported as room for exactly 500 Spot and 300 On-Demand VMs.
 * Exactly 500 Spot and 300 On-Demand reservations, 1,200 queued, no quota overrun, one
 * create per session and no VM name twice, every player's session consistent.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocUsage,
  AzureCreateVm,
  SessionStart,
  Streams,
  cmdSubject,
  ensureTopology,
} from '../../contracts/index.ts';
import {
  createAllocatorActor,
  defaultAllocatorConfig,
  type AllocState,
} from '../../actors/allocator/index.ts';
import {
  createSessionActor,
  defaultSessionConfig,
  type SessionState,
} from '../../actors/session/index.ts';
import {
  createWorker,
  systemClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import {
  eventually,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

const REGION = 'centralindia';
const PLAYERS = 2_000;
const SPOT_VMS = 500;
const ON_DEMAND_VMS = 300;
const CORES = 4; // Standard_NC4as_T4_v3, both default candidates

let env: RuntimeEnv;
let workers: Worker[] = [];
beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session, ActorKinds.alloc] });
  // Two in-process workers, one per kind, so the allocator's one-at-a-time partition never
  // waits behind a batch of session messages.
  const common = { nc: env.nc, db: env.db, log: env.log, clock: systemClock };
  workers = [
    createWorker({
      ...common,
      actors: [
        createSessionActor({
          ...defaultSessionConfig,
          requireAdmission: false,
        }) as unknown as ActorDefinition,
      ],
    }),
    createWorker({
      ...common,
      actors: [createAllocatorActor({ ...defaultAllocatorConfig }) as unknown as ActorDefinition],
    }),
  ];
  for (const w of workers) await w.start();
});
afterAll(async () => {
  for (const w of workers) await w.stop();
  await env?.dispose();
});

async function count(actor: string): Promise<number> {
  const r = await env.db.knex('rt_inbox').count<{ c: string }[]>({ c: '*' }).where({ actor });
  return Number(r[0]!.c);
}

it('reserves exactly the quota for 2,000 players starting at once and queues the rest', async () => {
  await env.js.publish(
    cmdSubject(ActorKinds.alloc, REGION, 'usage'),
    AllocUsage.encode({
      at: new Date().toISOString(),
      usages: [
        { name: 'lowPriorityCores', current: 0, limit: SPOT_VMS * CORES },
        { name: 'standardNCASv3_T4Family', current: 0, limit: ON_DEMAND_VMS * CORES },
      ],
    }),
  );
  // Every player presses start; every fifth presses again (a separate command, not a retry).
  const started = Date.now();
  const acks: Promise<unknown>[] = [];
  for (let i = 0; i < PLAYERS; i++) {
    const subject = cmdSubject(ActorKinds.session, `p${i}`, 'start');
    const presses = i % 5 === 0 ? 2 : 1;
    for (let n = 0; n < presses; n++) {
      acks.push(
        env.js.publish(subject, SessionStart.encode({ requestedBy: 'player' }), {
          msgID: `press-p${i}-${n}`,
        }),
      );
    }
  }
  await Promise.all(acks);
  expect(Date.now() - started, 'all presses published within a second').toBeLessThan(1_000);

  // The allocator decides one request per transaction (one actor per region, one partition):
  // about 30-50 decisions/s on a 2-core machine, so this takes about a minute (see
  // `npm run bench:allocation`).
  await eventually(
    'every start, every allocation request and every reply handled',
    async () =>
      (await count(ActorKinds.alloc)) >= PLAYERS + 1 &&
      (await count(ActorKinds.session)) >= PLAYERS * 2.2,
    150_000,
  );
  await eventually(
    'every player told provisioning or queued, outbox flushed',
    async () => {
      const r = await env.db.knex('rt_outbox').count<{ c: string }[]>({ c: '*' });
      const settled = await env.db
        .knex('rt_state')
        .count<{ c: string }[]>({ c: '*' })
        .where({ actor: 'session' })
        .whereRaw(`state->>'phase' in ('provisioning', 'queued')`);
      return Number(r[0]!.c) === 0 && Number(settled[0]!.c) === PLAYERS;
    },
    30_000,
  );

  const alloc = (
    await env.db.knex('rt_state').select('state').where({ actor: 'alloc', key: REGION })
  )[0] as { state: AllocState };
  const reservations = Object.entries(alloc.state.reservations);
  const spot = reservations.filter(([, r]) => r.quotaName === 'lowPriorityCores');
  const onDemand = reservations.filter(([, r]) => r.quotaName === 'standardNCASv3_T4Family');
  expect(spot).toHaveLength(SPOT_VMS);
  expect(onDemand).toHaveLength(ON_DEMAND_VMS);
  expect(alloc.state.queue).toHaveLength(PLAYERS - SPOT_VMS - ON_DEMAND_VMS);
  // No quota overrun: reserved cores never exceed the reported limit.
  expect(spot.reduce((n, [, r]) => n + r.cores, 0)).toBeLessThanOrEqual(SPOT_VMS * CORES);
  expect(onDemand.reduce((n, [, r]) => n + r.cores, 0)).toBeLessThanOrEqual(ON_DEMAND_VMS * CORES);

  // No duplicate VM: one create per reserved session, each VM name once.
  const creates = (await streamMessages(env.jsm, Streams.out.name, `respawn.out.azure.${REGION}`))
    .filter((m) => m.headers['Respawn-Type'] === AzureCreateVm.type)
    .map((m) => AzureCreateVm.decode(m.data));
  expect(creates).toHaveLength(SPOT_VMS + ON_DEMAND_VMS);
  expect(new Set(creates.map((c) => c.vmName)).size).toBe(creates.length);
  expect(new Set(creates.map((c) => c.sessionId)).size).toBe(creates.length);
  expect(creates.filter((c) => c.priority === 'spot')).toHaveLength(SPOT_VMS);

  // Every player's session agrees with the allocator: one session each, provisioning on the
  // reserved VM or queued.
  const sessions = (await env.db
    .knex('rt_state')
    .select('key', 'state')
    .where({ actor: 'session' })) as { key: string; state: SessionState }[];
  expect(sessions).toHaveLength(PLAYERS);
  const reservedBySession = new Map(reservations.map(([vm, r]) => [r.sessionId, vm]));
  const queued = new Set(alloc.state.queue.map((q) => q.sessionId));
  const inconsistent = sessions.filter(({ key, state }) => {
    if (state.seq !== 1 || state.sessionId !== `${key}-1`) return true;
    if (state.phase === 'provisioning')
      return reservedBySession.get(state.sessionId) !== state.vmName;
    if (state.phase === 'queued') return !queued.has(state.sessionId);
    return true;
  });
  expect(inconsistent.map((s) => `${s.key}:${s.state.phase}`)).toEqual([]);
  expect(sessions.filter((s) => s.state.phase === 'queued')).toHaveLength(
    PLAYERS - SPOT_VMS - ON_DEMAND_VMS,
  );
}, 200_000);
