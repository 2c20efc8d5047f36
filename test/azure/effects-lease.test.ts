/**
 * A region's Azure effects run in one worker at a time (actors/roles.ts): of two workers with
 * RESPAWN_AZURE_EFFECTS, the one holding the region's lease runs them, the other stands by;
 * when the first stops (after finishing what it had received) it gives the lease (a row of
 * rt_lease) back and
 * the other runs the next effects. Each runner converges the region's streaming NSG as it
 * starts.
 */
import { Registry } from 'prom-client';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../actors/config.ts';
import { startRoles, type Role } from '../../actors/roles.ts';
import { streamingNsgNameOf } from '../../actors/allocator/azure/index.ts';
import { ensureTopology } from '../../contracts/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { armEffectsEnv, until } from '../agent/support.ts';
import { captureLog, counter, type LogCapture } from '../gateway/support.ts';
import { startRuntimeEnv, type RuntimeEnv } from '../support/runtime-env.ts';
import { effectsLeaseOwner, publishCreate } from './support.ts';

const REGION = 'southindia';

let env: RuntimeEnv;
let arm: ArmFake;
interface Worker {
  roles: Role[];
  log: LogCapture;
  registry: Registry;
}
const workers: Worker[] = [];

beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [] });
  arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-0000000000e1',
    resourceGroup: 'respawn-effects-lease',
    location: REGION,
    quotas: { lowPriorityCores: 16, standardNCASv3_T4Family: 16, cores: 100 },
    lroPolls: 1,
  });
});
afterAll(async () => {
  for (const w of workers) for (const r of w.roles) await r.stop();
  await arm?.stop();
  await env?.dispose();
});

async function worker(holder: string): Promise<Worker> {
  const cfg = loadWorkerConfig({
    NATS_URL: env.nats.url,
    ...armEffectsEnv(arm, REGION),
    // Renewed and fenced quickly (0.5 s, 1.5 s; lives 4 s).
    RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS: '2',
  });
  const log = captureLog();
  const registry = new Registry();
  const w = {
    roles: await startRoles(cfg, env.nc, log.log, {
      knex: env.db.knex,
      holder,
      registry,
    }),
    log,
    registry,
  };
  workers.push(w);
  return w;
}

/** Who holds the region's lease, as an operator reads it (`select * from rt_lease`). */
async function holderNow(): Promise<string | undefined> {
  return (await effectsLeaseOwner(env.db.knex, REGION))?.replace(/#[0-9a-f]{8}$/, '');
}

const create = (player: string): Promise<string> =>
  publishCreate(env.js, REGION, player, `effects-lease-${player}`);

const said = (w: Worker, text: string): boolean => w.log.text().includes(text);

/** The region's streaming NSG, and the PUTs that converged it. */
const NSG = streamingNsgNameOf(REGION);
const nsgPuts = (): number =>
  arm.state
    .requests()
    .filter((r) => r.method === 'PUT' && r.path.endsWith(`/networkSecurityGroups/${NSG}`)).length;

/** The worker's `respawn_worker_role_active` for this region's effects. */
const playing = (w: Worker): Promise<number> =>
  counter(w.registry, 'respawn_worker_role_active', { role: `azure-effects.${REGION}` });

it('runs a region’s Azure effects in one worker; the other takes over when it stops', async () => {
  const a = await worker('worker-a');
  const b = await worker('worker-b');
  expect(await holderNow()).toBe('worker-a');
  expect(said(a, 'Azure effects runner started')).toBe(true);
  expect(said(b, 'Azure effects runner started')).toBe(false);
  expect(said(b, 'standing by')).toBe(true);
  expect([await playing(a), await playing(b)]).toEqual([1, 0]);
  // The runner converges the streaming NSG when it starts, before any create asks for it.
  await until(
    'NSG converged at start',
    () => arm.state.nsg(NSG)?.provisioningState === 'Succeeded',
  );
  expect(nsgPuts()).toBe(1);

  const first = await create('w1');
  await until('w1 VM running', () => arm.state.vm(first)?.powerState === 'running');
  expect(arm.state.nic(`${first}-nic`)?.networkSecurityGroupName).toBe(NSG);
  // Converged already: the create did not PUT it again.
  expect(nsgPuts()).toBe(1);

  for (const r of a.roles) await r.stop();
  await until('b runs the effects', () => said(b, 'Azure effects runner started'));
  expect(await holderNow()).toBe('worker-b');
  // Each runner start converges it once (an idempotent PUT): the same group.
  await until('NSG converged by b', () => nsgPuts() === 2);
  expect(arm.state.nsgs()).toHaveLength(1);
  expect([await playing(a), await playing(b)]).toEqual([0, 1]);
  const second = await create('w2');
  await until('w2 VM running', () => arm.state.vm(second)?.powerState === 'running');
  a.roles = [];
});
