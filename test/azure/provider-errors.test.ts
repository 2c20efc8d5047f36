/**
 * Every failure of the VmProvider is a ProviderError with a stable kind, whatever the SDK threw:
 * capacity and quota refusals (synchronous or from the long-running operation), throttling with
 * Retry-After, server errors, hangs cut by the deadline, network failures, bad names. Real SDK,
 * fake ARM over HTTPS.
 */
import { inspect } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { pino } from 'pino';
import {
  ProviderError,
  createAzureVmProvider,
  staticTokenCredential,
} from '../../actors/allocator/azure/index.ts';
import { CapacityCodes, type CapacityCode } from '../../deploy/fakes/arm/index.ts';
import {
  ADMIN_PASSWORD,
  LOCATION,
  RESOURCE_GROUP,
  SUBSCRIPTION,
  T4,
  provision,
  rejectionOf,
  startAzureEnv,
  type AzureEnv,
} from './support.ts';

let env: AzureEnv | undefined;
afterEach(async () => {
  await env?.dispose();
  env = undefined;
});

async function providerError(p: Promise<unknown>): Promise<ProviderError> {
  const err = await rejectionOf(p);
  expect(err).toBeInstanceOf(ProviderError);
  return err as ProviderError;
}

describe('VmProvider errors', () => {
  it.each<[CapacityCode, string | undefined]>([
    [CapacityCodes.skuNotAvailable, undefined],
    [CapacityCodes.allocationFailed, undefined],
    [CapacityCodes.zonalAllocationFailed, '2'],
    [CapacityCodes.overconstrained, undefined],
    [CapacityCodes.overconstrainedZonal, '2'],
  ])('classifies %s as capacity', async (code, zone) => {
    env = await startAzureEnv({
      capacity: [{ size: T4, priority: 'Spot', code, ...(zone ? { zone } : {}) }],
    });
    const { spec } = await provision(env.provider, 'p1', 's1', zone === undefined ? {} : { zone });

    const err = await providerError(env.provider.createOrUpdateVm(spec));

    expect(err).toMatchObject({ kind: 'capacity', code, operation: 'createOrUpdateVm' });
    expect(env.logLines.filter((l) => l.msg === 'azure call failed')).toEqual([
      expect.objectContaining({ op: 'createOrUpdateVm', kind: 'capacity', code, vm: spec.name }),
    ]);
  });

  it('Spot T4 without capacity in zone 2 still fits in zone 1, and On-Demand in zone 2', async () => {
    env = await startAzureEnv({ capacity: [{ size: T4, priority: 'Spot', zone: '2' }] });
    const z2 = await provision(env.provider, 'p1', 's1', { zone: '2' });
    expect(await providerError(env.provider.createOrUpdateVm(z2.spec))).toMatchObject({
      kind: 'capacity',
      code: 'ZonalAllocationFailed',
    });
    const z1 = await provision(env.provider, 'p2', 's2', { zone: '1' });
    expect(await env.provider.createOrUpdateVm(z1.spec)).toMatchObject({ zone: '1', tier: 'spot' });
    const od = await provision(env.provider, 'p3', 's3', { zone: '2', tier: 'on_demand' });
    expect(await env.provider.createOrUpdateVm(od.spec)).toMatchObject({
      zone: '2',
      tier: 'on_demand',
    });
  });

  it('a create that failed allocation leaves a Failed VM; deleting it frees the disk for the next candidate', async () => {
    env = await startAzureEnv({ capacity: [{ size: T4, priority: 'Spot' }] });
    const { disk, spec } = await provision(env.provider, 'p1', 's1');
    await providerError(env.provider.createOrUpdateVm(spec));
    expect(await env.provider.getVm(spec.name)).toMatchObject({ provisioningState: 'Failed' });
    expect((await env.provider.getDisk(disk))?.attachedToVm).toBe(spec.name);

    await env.provider.deleteVm(spec.name, { nicName: spec.nicName });
    const next = await provision(env.provider, 'p1', 's1-od', { tier: 'on_demand' });
    expect(await env.provider.createOrUpdateVm(next.spec)).toMatchObject({
      provisioningState: 'Succeeded',
      dataDiskNames: [disk],
    });
  });

  it('classifies an exceeded Spot or family vCPU quota as quota', async () => {
    env = await startAzureEnv({
      quotas: { lowPriorityCores: 4, standardNCASv3_T4Family: 0, cores: 100 },
    });
    const first = await provision(env.provider, 'p1', 's1');
    await env.provider.createOrUpdateVm(first.spec);

    const second = await provision(env.provider, 'p2', 's2');
    const spot = await providerError(env.provider.createOrUpdateVm(second.spec));
    expect(spot).toMatchObject({ kind: 'quota', code: 'OperationNotAllowed', statusCode: 409 });
    expect(spot.message).toContain('LowPriorityCores quota');

    const od = await provision(env.provider, 'p3', 's3', { tier: 'on_demand' });
    const family = await providerError(env.provider.createOrUpdateVm(od.spec));
    expect(family).toMatchObject({ kind: 'quota', code: 'OperationNotAllowed' });
    expect(family.message).toContain('standardNCASv3_T4Family Cores quota');
    expect(env.fake.state.vms().map((v) => v.name)).toEqual([first.spec.name]);
  });

  it('classifies 429 as throttled with retryAfterMs from Retry-After, and nothing is created', async () => {
    env = await startAzureEnv();
    env.fake.injectThrottle({ resource: 'usages', retryAfterSeconds: 7 });
    expect(await providerError(env.provider.getUsage())).toMatchObject({
      kind: 'throttled',
      statusCode: 429,
      retryAfterMs: 7000,
      code: 'TooManyRequests',
    });
    expect((await env.provider.getUsage(['cores'])).length).toBe(1);

    const { spec } = await provision(env.provider, 'p1', 's1');
    env.fake.injectThrottle({
      method: 'PUT',
      resource: 'virtualMachines',
      retryAfterSeconds: 3,
      code: 'SubscriptionRequestsThrottled',
    });
    expect(await providerError(env.provider.createOrUpdateVm(spec))).toMatchObject({
      kind: 'throttled',
      retryAfterMs: 3000,
      code: 'SubscriptionRequestsThrottled',
    });
    expect(env.fake.state.vms()).toEqual([]);
  });

  it('classifies server errors, during the request or the operation, as transient', async () => {
    env = await startAzureEnv();
    const { spec } = await provision(env.provider, 'p1', 's1');
    env.fake.injectFault({
      method: 'GET',
      resource: 'virtualMachines',
      status: 503,
      code: 'ServiceUnavailable',
    });
    expect(await providerError(env.provider.getVm(spec.name))).toMatchObject({
      kind: 'transient',
      statusCode: 503,
    });

    env.fake.injectFault({
      method: 'PUT',
      resource: 'virtualMachines',
      async: true,
      code: 'InternalExecutionError',
    });
    expect(await providerError(env.provider.createOrUpdateVm(spec))).toMatchObject({
      kind: 'transient',
      code: 'InternalExecutionError',
    });
    // Retrying the same create is safe and succeeds.
    expect(await env.provider.createOrUpdateVm(spec)).toMatchObject({
      provisioningState: 'Succeeded',
    });
  });

  it('gives up a hanging long-running operation at its deadline, as transient', async () => {
    env = await startAzureEnv({}, { operationTimeoutMs: 400, requestTimeoutMs: 300 });
    const { spec } = await provision(env.provider, 'p1', 's1');
    env.fake.injectFault({ resource: 'operations', hang: true, times: 1000 });
    const started = Date.now();
    expect(await providerError(env.provider.createOrUpdateVm(spec))).toMatchObject({
      kind: 'transient',
      code: 'OperationTimedOut',
    });
    expect(Date.now() - started).toBeLessThan(3_000);

    env.fake.injectFault({ method: 'GET', resource: 'virtualMachines', hang: true });
    expect(await providerError(env.provider.getVm(spec.name))).toMatchObject({
      kind: 'transient',
      code: 'OperationTimedOut',
    });
  });

  it('classifies a refused connection as transient', async () => {
    const provider = createAzureVmProvider({
      subscriptionId: SUBSCRIPTION,
      resourceGroup: RESOURCE_GROUP,
      location: LOCATION,
      credential: staticTokenCredential(),
      endpoint: 'https://127.0.0.1:1',
      pollIntervalMs: 10,
      log: pino({ level: 'silent' }),
    });
    expect(await providerError(provider.getUsage())).toMatchObject({
      kind: 'transient',
      statusCode: null,
    });
  });

  it('classifies missing resources as not_found and refusals of state as conflict', async () => {
    env = await startAzureEnv();
    const { disk, spec } = await provision(env.provider, 'p1', 's1');
    expect(
      await providerError(env.provider.createOrUpdateVm({ ...spec, dataDiskName: 'disk-nobody' })),
    ).toMatchObject({ kind: 'not_found' });
    expect(
      await providerError(
        env.provider.snapshotDisk({ name: 'snap-x', diskName: 'disk-nobody', tags: spec.tags }),
      ),
    ).toMatchObject({ kind: 'not_found' });

    await env.provider.createOrUpdateVm(spec);
    expect(await providerError(env.provider.deleteDisk(disk))).toMatchObject({
      kind: 'conflict',
      code: 'OperationNotAllowed',
    });
    expect(
      await providerError(env.provider.createOrUpdateVm({ ...spec, tier: 'on_demand' })),
    ).toMatchObject({ kind: 'conflict', code: 'PropertyChangeNotAllowed' });
  });

  it('refuses an invalid name before calling Azure', async () => {
    env = await startAzureEnv();
    const before = env.fake.state.requests().length;
    expect(await providerError(env.provider.getVm('../../evil'))).toMatchObject({
      kind: 'other',
      code: 'InvalidResourceName',
    });
    expect(env.fake.state.requests().length).toBe(before);
  });

  it('never carries the admin password or userData in an error', async () => {
    env = await startAzureEnv({ quotas: { lowPriorityCores: 0 } });
    const { spec } = await provision(env.provider, 'p1', 's1');
    const err = await providerError(env.provider.createOrUpdateVm(spec));
    // Every string reachable from the error, hidden properties included (as a serializer or a
    // debugger would find them), not only what util.inspect chooses to show.
    const everything = [
      ...reachableStrings(err),
      inspect(err, { depth: 20, showHidden: true }),
    ].join('\n');
    expect(everything).toContain('LowPriorityCores');
    expect(everything).not.toContain(ADMIN_PASSWORD);
    expect(everything).not.toContain(Buffer.from('agent-secret=do-not-log-me').toString('base64'));
    expect(env.rawLog()).not.toContain(ADMIN_PASSWORD);
  });
});

function reachableStrings(root: unknown): string[] {
  const out: string[] = [];
  const seen = new Set<unknown>();
  const walk = (value: unknown, depth: number): void => {
    if (typeof value === 'string') out.push(value);
    if (typeof value !== 'object' || value === null || seen.has(value) || depth > 10) return;
    seen.add(value);
    for (const key of Object.getOwnPropertyNames(value)) {
      const d = Object.getOwnPropertyDescriptor(value, key);
      if (d !== undefined && 'value' in d) walk(d.value, depth + 1);
    }
  };
  walk(root, 0);
  return out;
}
