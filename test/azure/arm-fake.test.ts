/**
 * The fake ARM's own contract, over raw HTTPS (no SDK): the URL shapes, api-version and bearer
 * token, long-running operations, public IPs and network security groups on NICs, capacity
 * places, evictions per policy and delete option, Scheduled Events as IMDS serves them, and
 * determinism with a seed.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startArmFake, type ArmFake, type ArmFakeOptions } from '../../deploy/fakes/arm/index.ts';
import { LOCATION, RESOURCE_GROUP, SUBSCRIPTION, T4, armRequest } from './support.ts';

const fakes: ArmFake[] = [];
afterEach(async () => {
  await Promise.all(fakes.splice(0).map((f) => f.stop()));
});

async function start(opts: Partial<ArmFakeOptions> = {}): Promise<ArmFake> {
  const fake = await startArmFake({
    subscriptionId: SUBSCRIPTION,
    resourceGroup: RESOURCE_GROUP,
    location: LOCATION,
    lroPolls: 2,
    ...opts,
  });
  fakes.push(fake);
  return fake;
}

const rgId = `/subscriptions/${SUBSCRIPTION}/resourceGroups/${RESOURCE_GROUP}`;

const pipId = (name: string): string =>
  `${rgId}/providers/Microsoft.Network/publicIPAddresses/${name}`;
const nsgId = (name: string): string =>
  `${rgId}/providers/Microsoft.Network/networkSecurityGroups/${name}`;

function nicBody(publicIp?: string, nsg?: string): unknown {
  return {
    location: LOCATION,
    properties: {
      ...(nsg === undefined ? {} : { networkSecurityGroup: { id: nsgId(nsg) } }),
      ipConfigurations: [
        {
          name: 'ip',
          properties: {
            subnet: { id: `${rgId}/providers/Microsoft.Network/virtualNetworks/v/subnets/s` },
            ...(publicIp === undefined ? {} : { publicIPAddress: { id: pipId(publicIp) } }),
          },
        },
      ],
    },
  };
}

const pipBody = {
  location: LOCATION,
  tags: { session: 'a' },
  sku: { name: 'Standard', tier: 'Regional' },
  properties: { publicIPAllocationMethod: 'Static', publicIPAddressVersion: 'IPv4' },
};

async function nicAndDisk(
  fake: ArmFake,
  n: string,
  zone?: string,
  publicIp?: string,
): Promise<void> {
  if (publicIp !== undefined) {
    await armRequest(fake, 'PUT', `Microsoft.Network/publicIPAddresses/${publicIp}`, pipBody);
  }
  await armRequest(fake, 'PUT', `Microsoft.Network/networkInterfaces/nic-${n}`, nicBody(publicIp));
  await armRequest(fake, 'PUT', `Microsoft.Compute/disks/disk-${n}`, {
    location: LOCATION,
    ...(zone === undefined ? {} : { zones: [zone] }),
    properties: { creationData: { createOption: 'Empty' }, diskSizeGB: 64 },
  });
  fake.settle();
}

function vmBody(
  n: string,
  opts: { priority?: string; evictionPolicy?: string; diskDelete?: string; zone?: string } = {},
): unknown {
  return {
    location: LOCATION,
    tags: { session: n },
    ...(opts.zone === undefined ? {} : { zones: [opts.zone] }),
    properties: {
      hardwareProfile: { vmSize: T4 },
      storageProfile: {
        imageReference: { publisher: 'p', offer: 'o', sku: 's', version: 'latest' },
        osDisk: { createOption: 'FromImage', deleteOption: 'Delete' },
        dataDisks: [
          {
            lun: 0,
            createOption: 'Attach',
            deleteOption: opts.diskDelete ?? 'Detach',
            managedDisk: { id: `${rgId}/providers/Microsoft.Compute/disks/disk-${n}` },
          },
        ],
      },
      osProfile: { adminUsername: 'u', adminPassword: 'secret-Pa55' },
      networkProfile: {
        networkInterfaces: [
          {
            id: `${rgId}/providers/Microsoft.Network/networkInterfaces/nic-${n}`,
            properties: { deleteOption: 'Delete' },
          },
        ],
      },
      priority: opts.priority ?? 'Spot',
      ...(opts.priority === 'Regular' ? {} : { evictionPolicy: opts.evictionPolicy ?? 'Delete' }),
    },
  };
}

describe('fake ARM', () => {
  it('requires api-version and a bearer token, and knows its subscription and resource group', async () => {
    const fake = await start();
    const usages = `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Compute/locations/${LOCATION}/usages`;
    expect(await armRequest(fake, 'GET', usages, undefined, { apiVersion: null })).toMatchObject({
      status: 400,
      body: { error: { code: 'MissingApiVersionParameter' } },
    });
    expect(await armRequest(fake, 'GET', usages, undefined, { token: null })).toMatchObject({
      status: 401,
      body: { error: { code: 'AuthenticationFailed' } },
    });
    expect(await armRequest(fake, 'GET', usages.replace(SUBSCRIPTION, 'other'))).toMatchObject({
      status: 404,
      body: { error: { code: 'SubscriptionNotFound' } },
    });
    expect(
      await armRequest(
        fake,
        'GET',
        `/subscriptions/${SUBSCRIPTION}/resourceGroups/nope/providers/Microsoft.Compute/disks`,
      ),
    ).toMatchObject({ status: 404, body: { error: { code: 'ResourceGroupNotFound' } } });
    expect(await armRequest(fake, 'GET', 'Microsoft.Compute/virtualMachines/absent')).toMatchObject(
      { status: 404, body: { error: { code: 'ResourceNotFound' } } },
    );
    expect(
      await armRequest(fake, 'PUT', 'Microsoft.Compute/disks/d', { location: LOCATION }),
    ).toMatchObject({ status: 400, body: { error: { code: 'InvalidRequestContent' } } });
  });

  it('answers a create with 201 and Azure-AsyncOperation, Succeeded after the configured polls', async () => {
    const fake = await start({ lroPolls: 3 });
    await nicAndDisk(fake, 'a');
    const put = await armRequest(
      fake,
      'PUT',
      'Microsoft.Compute/virtualMachines/vm-a',
      vmBody('a'),
    );
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ properties: { provisioningState: 'Creating' } });
    const op = put.headers['azure-asyncoperation'] ?? '';
    expect(op).toMatch(
      /\/providers\/Microsoft\.Compute\/locations\/centralindia\/operations\/.+api-version=/,
    );
    const statuses = [];
    for (let i = 0; i < 3; i++)
      statuses.push(
        (
          (await armRequest(fake, 'GET', new URL(op).pathname + new URL(op).search)).body as {
            status: string;
          }
        ).status,
      );
    expect(statuses).toEqual(['InProgress', 'InProgress', 'Succeeded']);
    expect(
      await armRequest(fake, 'GET', 'Microsoft.Compute/virtualMachines/vm-a?$expand=instanceView'),
    ).toMatchObject({
      body: {
        properties: {
          provisioningState: 'Succeeded',
          instanceView: {
            statuses: [{ code: 'ProvisioningState/succeeded' }, { code: 'PowerState/running' }],
          },
        },
      },
    });
    // ARM never returns the admin password.
    expect(JSON.stringify(put.body)).not.toContain('secret-Pa55');
  });

  it('serves public IPs: a create is long-running, a NIC holds one, and one in use cannot be deleted or taken', async () => {
    const fake = await start({ lroPolls: 1 });
    const put = await armRequest(
      fake,
      'PUT',
      'Microsoft.Network/publicIPAddresses/pip-a',
      pipBody,
      {
        apiVersion: '2025-05-01',
      },
    );
    expect(put.status).toBe(201);
    expect(put.headers['azure-asyncoperation']).toMatch(
      /\/providers\/Microsoft\.Network\/locations\/centralindia\/operations\/.+api-version=/,
    );
    const address = (put.body as { properties: { ipAddress: string } }).properties.ipAddress;
    expect(address).toMatch(/^203\.0\.113\.\d+$/);
    expect(
      await armRequest(fake, 'GET', 'Microsoft.Network/publicIPAddresses/pip-a'),
    ).toMatchObject({
      status: 200,
      body: {
        name: 'pip-a',
        tags: { session: 'a' },
        sku: { name: 'Standard' },
        properties: {
          provisioningState: 'Succeeded',
          publicIPAllocationMethod: 'Static',
          ipAddress: address,
        },
      },
    });
    // A retried create is the same resource with the same address.
    const again = await armRequest(
      fake,
      'PUT',
      'Microsoft.Network/publicIPAddresses/pip-a',
      pipBody,
    );
    expect(again).toMatchObject({ status: 200, body: { properties: { ipAddress: address } } });
    expect(fake.state.publicIps()).toHaveLength(1);
    // Another one gets another address.
    const other = await armRequest(
      fake,
      'PUT',
      'Microsoft.Network/publicIPAddresses/pip-b',
      pipBody,
    );
    expect((other.body as { properties: { ipAddress: string } }).properties.ipAddress).not.toBe(
      address,
    );

    // A NIC naming it holds it (a missing one is refused).
    expect(
      await armRequest(fake, 'PUT', 'Microsoft.Network/networkInterfaces/nic-x', nicBody('nope')),
    ).toMatchObject({ status: 400, body: { error: { code: 'InvalidResourceReference' } } });
    expect(
      (await armRequest(fake, 'PUT', 'Microsoft.Network/networkInterfaces/nic-a', nicBody('pip-a')))
        .status,
    ).toBe(201);
    fake.settle();
    const ipconfig = `${rgId}/providers/Microsoft.Network/networkInterfaces/nic-a/ipConfigurations/ipconfig1`;
    expect(
      await armRequest(fake, 'GET', 'Microsoft.Network/networkInterfaces/nic-a'),
    ).toMatchObject({
      body: {
        properties: {
          ipConfigurations: [{ properties: { publicIPAddress: { id: pipId('pip-a') } } }],
        },
      },
    });
    expect(
      await armRequest(fake, 'GET', 'Microsoft.Network/publicIPAddresses/pip-a'),
    ).toMatchObject({ body: { properties: { ipConfiguration: { id: ipconfig } } } });

    // In use: neither deleted (Azure's refusal) nor given to another NIC.
    expect(
      await armRequest(fake, 'DELETE', 'Microsoft.Network/publicIPAddresses/pip-a'),
    ).toMatchObject({ status: 400, body: { error: { code: 'PublicIPAddressCannotBeDeleted' } } });
    expect(
      await armRequest(fake, 'PUT', 'Microsoft.Network/networkInterfaces/nic-b', nicBody('pip-a')),
    ).toMatchObject({ status: 400, body: { error: { code: 'PublicIPAddressInUse' } } });
    expect(fake.state.publicIp('pip-a')?.ipConfigurationId).toBe(ipconfig);

    // Once its NIC is gone it is free, and goes (202, long-running); deleting it again is 204.
    expect(
      (await armRequest(fake, 'DELETE', 'Microsoft.Network/networkInterfaces/nic-a')).status,
    ).toBe(202);
    fake.settle();
    expect(fake.state.publicIp('pip-a')?.ipConfigurationId).toBeNull();
    expect(
      (await armRequest(fake, 'DELETE', 'Microsoft.Network/publicIPAddresses/pip-a')).status,
    ).toBe(202);
    fake.settle();
    expect(
      await armRequest(fake, 'GET', 'Microsoft.Network/publicIPAddresses/pip-a'),
    ).toMatchObject({ status: 404, body: { error: { code: 'ResourceNotFound' } } });
    expect(
      (await armRequest(fake, 'DELETE', 'Microsoft.Network/publicIPAddresses/pip-a')).status,
    ).toBe(204);
  });

  it('serves network security groups: a create is long-running, a PUT replaces the rules, a NIC holds one, and one in use cannot be deleted', async () => {
    const fake = await start({ lroPolls: 1 });
    const rule = (name: string, priority: number, ports: string[], protocol = 'Tcp'): unknown => ({
      name,
      properties: {
        protocol,
        access: 'Allow',
        direction: 'Inbound',
        priority,
        sourceAddressPrefix: 'Internet',
        sourcePortRange: '*',
        destinationAddressPrefix: '*',
        destinationPortRanges: ports,
      },
    });
    const body = (...rules: unknown[]): unknown => ({
      location: LOCATION,
      tags: { purpose: 'respawn-streaming' },
      properties: { securityRules: rules },
    });
    const path = 'Microsoft.Network/networkSecurityGroups/nsg-a';
    const put = await armRequest(fake, 'PUT', path, body(rule('tcp', 1000, ['47984', '48010'])), {
      apiVersion: '2025-05-01',
    });
    expect(put.status).toBe(201);
    expect(put.headers['azure-asyncoperation']).toMatch(
      /\/providers\/Microsoft\.Network\/locations\/centralindia\/operations\/.+api-version=/,
    );
    expect(await armRequest(fake, 'GET', path)).toMatchObject({
      status: 200,
      body: {
        id: nsgId('nsg-a'),
        type: 'Microsoft.Network/networkSecurityGroups',
        tags: { purpose: 'respawn-streaming' },
        properties: {
          provisioningState: 'Succeeded',
          securityRules: [
            {
              id: `${nsgId('nsg-a')}/securityRules/tcp`,
              name: 'tcp',
              properties: {
                protocol: 'Tcp',
                access: 'Allow',
                direction: 'Inbound',
                priority: 1000,
                sourceAddressPrefix: 'Internet',
                destinationPortRanges: ['47984', '48010'],
              },
            },
          ],
          // Azure's own rules: whatever no rule allows in is denied.
          defaultSecurityRules: expect.arrayContaining([
            expect.objectContaining({
              name: 'DenyAllInBound',
              properties: expect.objectContaining({ access: 'Deny', priority: 65500 }) as unknown,
            }),
          ]) as unknown,
        },
      },
    });

    // A PUT is a convergence: the rules are exactly those sent, the same resource.
    const again = await armRequest(
      fake,
      'PUT',
      path,
      body(rule('tcp', 1000, ['47989']), rule('udp', 1010, ['47998-48000'], 'Udp')),
    );
    expect(again.status).toBe(200);
    expect(fake.state.nsgs()).toHaveLength(1);
    expect(fake.state.nsg('nsg-a')?.rules.map((r) => [r.name, r.destinationPortRanges])).toEqual([
      ['tcp', ['47989']],
      ['udp', ['47998-48000']],
    ]);
    // Refused as Azure refuses them: a priority out of range, two rules in one slot.
    expect(await armRequest(fake, 'PUT', path, body(rule('low', 50, ['1'])))).toMatchObject({
      status: 400,
      body: { error: { code: 'SecurityRuleInvalidPriority' } },
    });
    expect(
      await armRequest(fake, 'PUT', path, body(rule('a', 1000, ['1']), rule('b', 1000, ['2']))),
    ).toMatchObject({ status: 400, body: { error: { code: 'SecurityRuleConflict' } } });

    // A NIC naming a missing group is refused (Azure's 400); naming this one, it holds it.
    expect(
      await armRequest(
        fake,
        'PUT',
        'Microsoft.Network/networkInterfaces/nic-x',
        nicBody(undefined, 'nope'),
      ),
    ).toMatchObject({
      status: 400,
      body: {
        error: {
          code: 'InvalidResourceReference',
          message: expect.stringContaining(nsgId('nope')) as unknown,
        },
      },
    });
    expect(fake.state.nic('nic-x')).toBeUndefined();
    expect(
      (
        await armRequest(
          fake,
          'PUT',
          'Microsoft.Network/networkInterfaces/nic-a',
          nicBody(undefined, 'nsg-a'),
        )
      ).status,
    ).toBe(201);
    fake.settle();
    const nicId = `${rgId}/providers/Microsoft.Network/networkInterfaces/nic-a`;
    expect(
      await armRequest(fake, 'GET', 'Microsoft.Network/networkInterfaces/nic-a'),
    ).toMatchObject({ body: { properties: { networkSecurityGroup: { id: nsgId('nsg-a') } } } });
    expect(await armRequest(fake, 'GET', path)).toMatchObject({
      body: { properties: { networkInterfaces: [{ id: nicId }] } },
    });
    expect(await armRequest(fake, 'GET', '/_fake/state')).toMatchObject({
      body: {
        nics: [{ name: 'nic-a', networkSecurityGroupName: 'nsg-a' }],
        networkSecurityGroups: [
          {
            name: 'nsg-a',
            networkInterfaces: [nicId],
            rules: [{ name: 'tcp' }, { name: 'udp' }],
          },
        ],
      },
    });

    // In use: not deleted. A NIC PUT without it takes it off; then it goes (202, long-running).
    expect(await armRequest(fake, 'DELETE', path)).toMatchObject({
      status: 400,
      body: { error: { code: 'InUseNetworkSecurityGroupCannotBeDeleted' } },
    });
    await armRequest(fake, 'PUT', 'Microsoft.Network/networkInterfaces/nic-a', nicBody());
    expect(fake.state.nic('nic-a')?.networkSecurityGroupName).toBeNull();
    expect((await armRequest(fake, 'DELETE', path)).status).toBe(202);
    fake.settle();
    expect(await armRequest(fake, 'GET', path)).toMatchObject({
      status: 404,
      body: { error: { code: 'ResourceNotFound' } },
    });
    expect((await armRequest(fake, 'DELETE', path)).status).toBe(204);
  });

  it('frees a public IP when its VM goes with the NIC (eviction with Delete), and IMDS shows it while it runs', async () => {
    const fake = await start({ lroPolls: 1 });
    await nicAndDisk(fake, 'a', undefined, 'pip-a');
    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-a', vmBody('a'));
    fake.settle();
    const network = await armRequest(
      fake,
      'GET',
      '/metadata/instance/network?api-version=2021-02-01&vm=vm-a',
      undefined,
      { apiVersion: null, headers: { Metadata: 'true' } },
    );
    expect(network.body).toMatchObject({
      interface: [
        {
          ipv4: {
            ipAddress: [
              {
                privateIpAddress: fake.state.nic('nic-a')?.privateIp,
                publicIpAddress: fake.state.publicIp('pip-a')?.ipAddress,
              },
            ],
          },
        },
      ],
    });
    fake.evict('vm-a');
    expect(fake.state.nic('nic-a')).toBeUndefined();
    // Azure leaves a standalone public IP behind: Respawn deletes it after the NIC.
    expect(fake.state.publicIp('pip-a')).toMatchObject({ ipConfigurationId: null });
    expect(
      (await armRequest(fake, 'DELETE', 'Microsoft.Network/publicIPAddresses/pip-a')).status,
    ).toBe(202);
  });

  it('gives capacity places out and back: a deleted VM frees its place, an evicted one does not', async () => {
    const fake = await start({ capacity: [{ size: T4, priority: 'Spot', available: 1 }] });
    for (const n of ['a', 'b', 'c']) await nicAndDisk(fake, n);
    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-a', vmBody('a'));
    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-b', vmBody('b'));
    fake.settle();
    expect(fake.state.vm('vm-b')?.provisioningState).toBe('Failed');
    await armRequest(fake, 'DELETE', 'Microsoft.Compute/virtualMachines/vm-a');
    await armRequest(fake, 'DELETE', 'Microsoft.Compute/virtualMachines/vm-b');
    fake.settle();
    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-c', vmBody('c'));
    fake.settle();
    expect(fake.state.vm('vm-c')?.provisioningState).toBe('Succeeded');
    fake.evict('vm-c');
    await nicAndDisk(fake, 'd');
    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-d', vmBody('d'));
    fake.settle();
    expect(fake.state.vm('vm-d')?.provisioningState).toBe('Failed');
  });

  it('evicts per policy and delete option: Deallocate keeps the VM and disk, Delete keeps only a Detach disk', async () => {
    const fake = await start();
    for (const n of ['a', 'b', 'c']) await nicAndDisk(fake, n);
    await armRequest(
      fake,
      'PUT',
      'Microsoft.Compute/virtualMachines/vm-a',
      vmBody('a', { evictionPolicy: 'Deallocate' }),
    );
    await armRequest(
      fake,
      'PUT',
      'Microsoft.Compute/virtualMachines/vm-b',
      vmBody('b', { evictionPolicy: 'Delete' }),
    );
    await armRequest(
      fake,
      'PUT',
      'Microsoft.Compute/virtualMachines/vm-c',
      vmBody('c', { evictionPolicy: 'Delete', diskDelete: 'Delete' }),
    );
    await nicAndDisk(fake, 'r');
    await armRequest(
      fake,
      'PUT',
      'Microsoft.Compute/virtualMachines/vm-r',
      vmBody('r', { priority: 'Regular' }),
    );
    fake.settle();

    for (const vm of ['vm-a', 'vm-b', 'vm-c']) fake.evict(vm);

    expect(fake.state.vm('vm-a')).toMatchObject({ powerState: 'deallocated' });
    expect(fake.state.disk('disk-a')).toMatchObject({ diskState: 'Reserved' });
    expect(fake.state.usage().find((u) => u.name === 'lowPriorityCores')?.current).toBe(4); // still held
    expect(fake.state.vm('vm-b')).toBeUndefined();
    expect(fake.state.disk('disk-b')).toMatchObject({ diskState: 'Unattached', managedBy: null });
    expect(fake.state.nic('nic-b')).toBeUndefined();
    expect(fake.state.vm('vm-c')).toBeUndefined();
    expect(fake.state.disk('disk-c')).toBeUndefined();
    expect(() => fake.evict('vm-r')).toThrow(/not a Spot VM/);
  });

  it('serves Scheduled Events as IMDS does, and an approved Preempt evicts at once', async () => {
    const fake = await start();
    await nicAndDisk(fake, 'a');
    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-a', vmBody('a'));
    fake.settle();
    // Azure's own trigger: POST …/simulateEviction.
    expect(
      (await armRequest(fake, 'POST', 'Microsoft.Compute/virtualMachines/vm-a/simulateEviction'))
        .status,
    ).toBe(204);

    const imds = '/metadata/scheduledevents?api-version=2020-07-01&vm=vm-a';
    expect((await armRequest(fake, 'GET', imds, undefined, { token: null })).status).toBe(400);
    const doc = await armRequest(fake, 'GET', imds, undefined, {
      token: null,
      headers: { Metadata: 'true' },
    });
    expect(doc.body).toMatchObject({
      DocumentIncarnation: 1,
      Events: [
        {
          EventType: 'Preempt',
          ResourceType: 'VirtualMachine',
          Resources: ['vm-a'],
          EventStatus: 'Scheduled',
          EventSource: 'Platform',
        },
      ],
    });
    const eventId = (doc.body as { Events: { EventId: string }[] }).Events[0]?.EventId ?? '';
    expect(
      Date.parse((doc.body as { Events: { NotBefore: string }[] }).Events[0]?.NotBefore ?? ''),
    ).toBeGreaterThan(Date.now() + 20_000);

    const ack = await armRequest(
      fake,
      'POST',
      imds,
      { StartRequests: [{ EventId: eventId }] },
      { token: null, headers: { Metadata: 'true' } },
    );
    expect(ack.status).toBe(200);
    expect(fake.state.vm('vm-a')).toBeUndefined();
    expect(fake.state.disk('disk-a')?.diskState).toBe('Unattached');
  });

  it('can be driven over HTTP from another process (/_fake/ controls)', async () => {
    const fake = await start();
    await nicAndDisk(fake, 'a');
    expect((await armRequest(fake, 'PUT', '/_fake/quotas', { lowPriorityCores: 0 })).status).toBe(
      204,
    );
    const refused = await armRequest(
      fake,
      'PUT',
      'Microsoft.Compute/virtualMachines/vm-a',
      vmBody('a'),
    );
    expect(refused).toMatchObject({
      status: 409,
      body: { error: { code: 'OperationNotAllowed' } },
    });
    await armRequest(fake, 'PUT', '/_fake/quotas', { lowPriorityCores: 8 });
    await armRequest(fake, 'PUT', '/_fake/capacity', [{ priority: 'Spot', zone: '3' }]);
    await armRequest(fake, 'POST', '/_fake/faults', {
      resource: 'usages',
      status: 429,
      retryAfterSeconds: 9,
    });
    const usages = `/subscriptions/${SUBSCRIPTION}/providers/Microsoft.Compute/locations/${LOCATION}/usages`;
    expect(await armRequest(fake, 'GET', usages)).toMatchObject({
      status: 429,
      headers: { 'retry-after': '9' },
    });
    expect((await armRequest(fake, 'GET', usages)).status).toBe(200);

    await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-a', vmBody('a'));
    await armRequest(fake, 'POST', '/_fake/settle');
    expect((await armRequest(fake, 'POST', '/_fake/evict', { vm: 'vm-a' })).status).toBe(204);
    expect(await armRequest(fake, 'GET', '/_fake/state')).toMatchObject({
      status: 200,
      body: { vms: [], disks: [{ name: 'disk-a', diskState: 'Unattached' }] },
    });
    expect((await armRequest(fake, 'POST', '/_fake/evict', { nope: 1 })).status).toBe(400);
  });

  it('is deterministic with a seed', async () => {
    const run = async (seed: number): Promise<unknown> => {
      const fake = await start({ seed });
      await nicAndDisk(fake, 'a', undefined, 'pip-a');
      await armRequest(fake, 'PUT', 'Microsoft.Compute/virtualMachines/vm-a', vmBody('a'));
      fake.settle();
      return {
        vm: fake.state.vm('vm-a')?.vmId,
        ip: fake.state.nic('nic-a')?.privateIp,
        publicIp: fake.state.publicIp('pip-a')?.ipAddress,
        os: fake.state.vm('vm-a')?.osDisk.name,
      };
    };
    const first = await run(7);
    expect(await run(7)).toEqual(first);
    expect(await run(8)).not.toEqual(first);
  });
});
