/**
 * The VmProvider through the real @azure/arm-compute and @azure/arm-network SDKs, over HTTPS,
 * against the fake ARM: VMs with their NIC (and public IP and streaming NSG) and the player's
 * disk, idempotent creates, usage,
 * deletes that keep the disk, snapshots and restores, listing by tag, and Spot evictions.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ProviderError, STREAMING_RULES } from '../../actors/allocator/azure/index.ts';
import type { ArmFake, FakeVmEvent } from '../../deploy/fakes/arm/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  ADMIN_PASSWORD,
  T4,
  armRequest,
  namesFor,
  provision,
  rejectionOf,
  startAzureEnv,
  tagsFor,
  vmSpec,
  type AzureEnv,
} from './support.ts';

let env: AzureEnv | undefined;
afterEach(async () => {
  await env?.dispose();
  env = undefined;
});

describe('VmProvider on Azure (real SDK, fake ARM)', () => {
  it('creates a tagged Spot VM with its NIC and the player data disk through long-running operations', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { disk, spec } = await provision(provider, 'p1', 's1');

    const vm = await provider.createOrUpdateVm(spec);

    expect(vm).toMatchObject({
      name: 'vm-s1',
      size: T4,
      tier: 'spot',
      evictionPolicy: 'Delete',
      provisioningState: 'Succeeded',
      nicNames: ['nic-s1'],
      dataDiskNames: [disk],
      tags: { app: 'respawn', player: 'p1', session: 's1', tier: 'spot', purpose: 'session-vm' },
    });
    const stored = fake.state.vm('vm-s1');
    expect(stored?.priority).toBe('Spot');
    expect(stored?.maxPrice).toBe(-1);
    expect(stored?.dataDisks).toEqual([
      expect.objectContaining({ lun: 0, name: disk, deleteOption: 'Detach' }),
    ]);
    expect(stored?.nics[0]?.deleteOption).toBe('Delete');
    expect(Buffer.from(stored?.userData ?? '', 'base64').toString()).toBe(
      'agent-secret=do-not-log-me',
    );
    expect(fake.state.nic('nic-s1')?.tags).toMatchObject({ player: 'p1', session: 's1' });
    expect(fake.state.disk(disk)?.tags).toMatchObject({ player: 'p1', purpose: 'player-disk' });

    // The create was a real long-running operation: 201 + Azure-AsyncOperation, polled with
    // api-version until Succeeded, then the VM read back.
    const requests = fake.state.requests();
    const put = requests.findIndex(
      (r) => r.method === 'PUT' && r.path.endsWith('/virtualMachines/vm-s1'),
    );
    const calls = requests.slice(put);
    expect(calls.map((r) => `${r.method} ${r.status} ${r.path.split('/').at(-2) ?? ''}`)).toEqual([
      'PUT 201 virtualMachines',
      'GET 200 operations',
      'GET 200 operations',
      'GET 200 virtualMachines',
    ]);
    expect(calls.every((r) => r.query['api-version'] !== undefined)).toBe(true);

    expect(await provider.getVm('vm-s1')).toMatchObject({
      powerState: 'running',
      vmId: stored?.vmId,
    });
    // Secrets reach Azure but never the log.
    expect(env.rawLog()).not.toContain(ADMIN_PASSWORD);
    expect(env.rawLog()).not.toContain('do-not-log-me');
  });

  it('creating the same VM name twice, even concurrently, is one VM and one quota charge', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { spec } = await provision(provider, 'p2', 's2');

    const [a, b] = await Promise.all([
      provider.createOrUpdateVm(spec),
      provider.createOrUpdateVm(spec),
    ]);
    const c = await provider.createOrUpdateVm(spec);

    expect(fake.state.vms()).toHaveLength(1);
    expect(new Set([a.vmId, b.vmId, c.vmId]).size).toBe(1);
    expect(await provider.getUsage(['lowPriorityCores'])).toEqual([
      { name: 'lowPriorityCores', current: 4, limit: 100 },
    ]);
  });

  it('usage moves with creates and deletes: Spot vCPUs for Spot, family and regional vCPUs for On-Demand', async () => {
    env = await startAzureEnv({
      quotas: { lowPriorityCores: 40, standardNCASv3_T4Family: 16, cores: 50 },
    });
    const { provider } = env;
    const names = ['lowPriorityCores', 'standardNCASv3_T4Family', 'cores'];
    const figures = async (): Promise<Record<string, number>> =>
      Object.fromEntries((await provider.getUsage(names)).map((u) => [u.name, u.current]));

    expect(await figures()).toEqual({ lowPriorityCores: 0, standardNCASv3_T4Family: 0, cores: 0 });
    const spot = await provision(provider, 'p3', 's3');
    await provider.createOrUpdateVm(spot.spec);
    const od = await provision(provider, 'p4', 's4', { tier: 'on_demand' });
    await provider.createOrUpdateVm(od.spec);
    expect(await figures()).toEqual({ lowPriorityCores: 4, standardNCASv3_T4Family: 4, cores: 4 });
    expect((await provider.getUsage(['lowPriorityCores']))[0]?.limit).toBe(40);

    await provider.deleteVm(spot.spec.name);
    expect(await figures()).toEqual({ lowPriorityCores: 0, standardNCASv3_T4Family: 4, cores: 4 });
    await provider.deleteVm(od.spec.name);
    expect(await figures()).toEqual({ lowPriorityCores: 0, standardNCASv3_T4Family: 0, cores: 0 });
  });

  it('deleting a VM deletes its NIC and keeps the player disk, ready for the next VM', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { disk, spec } = await provision(provider, 'p5', 's5');
    await provider.createOrUpdateVm(spec);

    await provider.deleteVm(spec.name, { nicName: spec.nicName });

    expect(await provider.getVm(spec.name)).toBeNull();
    expect(fake.state.nic(spec.nicName)).toBeUndefined();
    expect(await provider.getDisk(disk)).toMatchObject({
      diskState: 'Unattached',
      attachedToVm: null,
      sizeGb: 256,
    });
    // An OS disk is disposable and goes with its VM.
    expect(fake.state.disks().map((d) => d.name)).toEqual([disk]);
    // Deleting again is not an error (a retried delete).
    await provider.deleteVm(spec.name, { nicName: spec.nicName });

    const next = await provision(provider, 'p5', 's5b', { tier: 'on_demand' });
    expect(await provider.createOrUpdateVm(next.spec)).toMatchObject({
      dataDiskNames: [disk],
      tier: 'on_demand',
    });
  });

  it('gives the NIC a static Standard public IP made first, the same on a retry, deleted after the NIC', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { disk } = await provision(provider, 'p20', 's20');
    const spec = vmSpec('p20', 's20', disk);
    const pip = `${spec.name}-pip`;
    const before = fake.state.requests().length;

    const nic = await provider.ensureNic({
      name: spec.nicName,
      publicIpName: pip,
      tags: spec.tags,
    });

    expect(nic).toMatchObject({ name: spec.nicName, publicIpName: pip });
    expect(nic.publicIp).toMatch(/^203\.0\.113\.\d+$/);
    expect(fake.state.publicIp(pip)).toMatchObject({
      sku: 'Standard',
      allocationMethod: 'Static',
      ipAddress: nic.publicIp,
      tags: { app: 'respawn', player: 'p20', session: 's20', tier: 'spot', purpose: 'session-vm' },
      ipConfigurationId: expect.stringMatching(
        new RegExp(`/networkInterfaces/${spec.nicName}/ipConfigurations/ipconfig1$`),
      ) as unknown,
    });
    expect(fake.state.nic(spec.nicName)?.publicIpName).toBe(pip);
    // The public IP first (a long-running operation, with the SDK's api-version), then the NIC.
    const calls = fake.state
      .requests()
      .slice(before)
      .map((r) => `${r.method} ${r.status} ${r.path.split('/').at(-2) ?? ''}`);
    expect(calls).toEqual([
      'PUT 201 publicIPAddresses',
      'GET 200 operations',
      'GET 200 operations',
      'GET 200 publicIPAddresses',
      'PUT 200 networkInterfaces',
    ]);
    expect(
      fake.state
        .requests()
        .filter((r) => r.path.includes('/publicIPAddresses/'))
        .every((r) => r.query['api-version'] === '2025-05-01'),
    ).toBe(true);

    // A retried create converges: the same public IP, the same address, one of each.
    const again = await provider.ensureNic({
      name: spec.nicName,
      publicIpName: pip,
      tags: spec.tags,
    });
    expect(again.publicIp).toBe(nic.publicIp);
    expect(fake.state.publicIps()).toHaveLength(1);
    await provider.createOrUpdateVm(spec);

    const mark = fake.state.requests().length;
    await provider.deleteVm(spec.name, { nicName: spec.nicName, publicIpName: pip });
    expect(fake.state.publicIp(pip)).toBeUndefined();
    expect(fake.state.nic(spec.nicName)).toBeUndefined();
    expect(await provider.getDisk(disk)).toMatchObject({ diskState: 'Unattached' });
    const deletes = fake.state
      .requests()
      .slice(mark)
      .filter((r) => r.method === 'DELETE')
      .map((r) => r.path.split('/').at(-2));
    expect(deletes).toEqual(['virtualMachines', 'networkInterfaces', 'publicIPAddresses']);

    // Deleting a VM whose public IP is already gone is fine: absent (204) or not found (404).
    await provider.deleteVm(spec.name, { nicName: spec.nicName, publicIpName: pip });
    fake.injectFault({
      method: 'DELETE',
      resource: 'publicIPAddresses',
      status: 404,
      code: 'ResourceNotFound',
    });
    await provider.deleteVm(spec.name, { nicName: spec.nicName, publicIpName: pip });
  });

  it('a public IP in use is refused as conflict, and a NIC without one has none', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const tags = tagsFor('p21', 's21');
    const nic = await provider.ensureNic({ name: 'nic-s21', publicIpName: 'vm-s21-pip', tags });
    // Another NIC cannot take it.
    const err = await rejectionOf(
      provider.ensureNic({ name: 'nic-s21b', publicIpName: 'vm-s21-pip', tags }),
    );
    expect(err).toMatchObject({ kind: 'conflict', code: 'PublicIPAddressInUse' });
    // Azure's order matters: the public IP cannot go before its NIC.
    const refused = await armRequest(
      fake,
      'DELETE',
      'Microsoft.Network/publicIPAddresses/vm-s21-pip',
    );
    expect(refused).toMatchObject({
      status: 400,
      body: { error: { code: 'PublicIPAddressCannotBeDeleted' } },
    });
    expect(fake.state.publicIp('vm-s21-pip')?.ipAddress).toBe(nic.publicIp);
    await provider.deleteVm('vm-s21', { nicName: 'nic-s21', publicIpName: 'vm-s21-pip' });
    expect(fake.state.publicIps()).toEqual([]);

    const plain = await provider.ensureNic({ name: 'nic-s22', tags: tagsFor('p22', 's22') });
    expect(plain).toMatchObject({ publicIpName: null, publicIp: null });
    expect(fake.state.publicIps()).toEqual([]);
  });

  it('converges the streaming NSG with one idempotent PUT and puts it on the NIC, which keeps it out of deletes', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const nsgSpec = {
      name: 'respawn-streaming-nsg-centralindia',
      rules: STREAMING_RULES,
      tags: { purpose: 'respawn-streaming', region: 'centralindia' },
    };
    const before = fake.state.requests().length;
    const info = await provider.ensureSecurityGroup(nsgSpec);
    expect(info).toMatchObject({
      name: nsgSpec.name,
      ruleNames: ['moonlight-tcp', 'moonlight-udp'],
      provisioningState: 'Succeeded',
      tags: { app: 'respawn', purpose: 'respawn-streaming', region: 'centralindia' },
    });
    // Respawn's tags, without a player: it belongs to every session.
    expect(info.tags).not.toHaveProperty('player');
    // A long-running create (with the SDK's api-version), then the group read back.
    const requests = fake.state.requests().slice(before);
    expect(
      requests.map((r) => `${r.method} ${r.status} ${r.path.split('/').at(-2) ?? ''}`),
    ).toEqual([
      'PUT 201 networkSecurityGroups',
      'GET 200 operations',
      'GET 200 operations',
      'GET 200 networkSecurityGroups',
    ]);
    expect(
      requests
        .filter((r) => r.path.includes('/networkSecurityGroups/'))
        .every((r) => r.query['api-version'] === '2025-05-01'),
    ).toBe(true);
    expect(fake.state.nsg(nsgSpec.name)?.rules).toEqual([
      expect.objectContaining({
        name: 'moonlight-tcp',
        protocol: 'Tcp',
        access: 'Allow',
        direction: 'Inbound',
        sourceAddressPrefixes: ['Internet'],
        destinationAddressPrefixes: ['*'],
        destinationPortRanges: ['47984', '47989', '48010'],
      }),
      expect.objectContaining({
        name: 'moonlight-udp',
        protocol: 'Udp',
        destinationPortRanges: ['47998-48000'],
      }),
    ]);

    // Someone opens another port by hand; the next convergence puts the rules back as they
    // should be, on the same resource.
    await armRequest(fake, 'PUT', `Microsoft.Network/networkSecurityGroups/${nsgSpec.name}`, {
      location: 'centralindia',
      properties: {
        securityRules: [
          {
            name: 'rdp',
            properties: {
              protocol: 'Tcp',
              access: 'Allow',
              direction: 'Inbound',
              priority: 100,
              sourceAddressPrefix: '*',
              sourcePortRange: '*',
              destinationAddressPrefix: '*',
              destinationPortRange: '3389',
            },
          },
        ],
      },
    });
    const guid = fake.state.nsg(nsgSpec.name)?.resourceGuid;
    expect((await provider.ensureSecurityGroup(nsgSpec)).ruleNames).toEqual([
      'moonlight-tcp',
      'moonlight-udp',
    ]);
    expect(fake.state.nsgs()).toHaveLength(1);
    expect(fake.state.nsg(nsgSpec.name)?.resourceGuid).toBe(guid);

    // On the NIC of a VM with a public IP (made after the group, before the NIC).
    const { disk } = await provision(provider, 'p23', 's23');
    const spec = vmSpec('p23', 's23', disk);
    const mark = fake.state.requests().length;
    const nic = await provider.ensureNic({
      name: spec.nicName,
      publicIpName: `${spec.name}-pip`,
      securityGroupName: nsgSpec.name,
      tags: spec.tags,
    });
    expect(nic).toMatchObject({
      securityGroupName: nsgSpec.name,
      publicIpName: `${spec.name}-pip`,
    });
    expect(fake.state.nic(spec.nicName)?.networkSecurityGroupName).toBe(nsgSpec.name);
    expect(
      fake.state
        .requests()
        .slice(mark)
        .filter((r) => r.method === 'PUT')
        .map((r) => r.path.split('/').at(-2)),
    ).toEqual(['publicIPAddresses', 'networkInterfaces']);
    // Idempotent: the same NIC, still with it.
    expect(
      (
        await provider.ensureNic({
          name: spec.nicName,
          publicIpName: `${spec.name}-pip`,
          securityGroupName: nsgSpec.name,
          tags: spec.tags,
        })
      ).securityGroupName,
    ).toBe(nsgSpec.name);
    await provider.createOrUpdateVm(spec);

    // A NIC naming a group that is not there: Azure's InvalidResourceReference, not_found.
    const err = await rejectionOf(
      provider.ensureNic({
        name: 'nic-s24',
        securityGroupName: 'absent-nsg',
        tags: tagsFor('p24', 's24'),
      }),
    );
    expect(err).toMatchObject({ kind: 'not_found', code: 'InvalidResourceReference' });
    expect(fake.state.nic('nic-s24')).toBeUndefined();

    // Deleting the VM takes its NIC and public IP, never the shared group.
    await provider.deleteVm(spec.name, { nicName: spec.nicName, publicIpName: `${spec.name}-pip` });
    expect(fake.state.nic(spec.nicName)).toBeUndefined();
    expect(fake.state.nsg(nsgSpec.name)).toBeDefined();
    expect(
      fake.state
        .requests()
        .some((r) => r.method === 'DELETE' && r.path.includes('/networkSecurityGroups/')),
    ).toBe(false);
  });

  it('deletes a NIC left behind by a create that never happened', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { nic } = namesFor('s6');
    await provider.ensureNic({ name: nic, tags: tagsFor('p6', 's6') });
    await provider.deleteVm(namesFor('s6').vm, { nicName: nic });
    expect(fake.state.nic(nic)).toBeUndefined();
  });

  it('refuses to delete a VM whose data disk would be deleted with it', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { disk, spec } = await provision(provider, 'p7', 's7');
    // A VM made by hand (say in the portal) with the player's disk set to die with it.
    const put = await armRequest(
      fake,
      'PUT',
      `Microsoft.Compute/virtualMachines/${spec.name}`,
      handMadeVm(fake, spec.nicName, disk),
    );
    expect(put.status).toBe(201);
    fake.settle();

    const err = await rejectionOf(provider.deleteVm(spec.name));
    expect(err).toBeInstanceOf(ProviderError);
    expect(err).toMatchObject({
      kind: 'conflict',
      code: 'DataDiskWouldBeDeleted',
      operation: 'deleteVm',
    });
    expect(fake.state.vm(spec.name)).toBeDefined();
    expect(fake.state.disk(disk)).toBeDefined();
  });

  it('snapshots a disk, deletes it, and restores it from the snapshot', async () => {
    env = await startAzureEnv();
    const { provider } = env;
    const disk = 'disk-p8';
    await provider.createDisk({
      name: disk,
      sizeGb: 300,
      source: { kind: 'empty' },
      tags: tagsFor('p8', 's8', 'player-disk'),
    });

    const snapshot = await provider.snapshotDisk({
      name: 'snap-p8',
      diskName: disk,
      tags: tagsFor('p8', 's8', 'disk-snapshot'),
    });
    expect(snapshot).toMatchObject({
      name: 'snap-p8',
      sizeGb: 300,
      incremental: true,
      provisioningState: 'Succeeded',
    });
    expect(snapshot.sourceDiskId).toMatch(/\/disks\/disk-p8$/);
    // The disk reconciler lists archives by tag, as it lists disks.
    expect((await provider.listSnapshots()).map((s) => s.name)).toEqual(['snap-p8']);
    expect(await provider.listSnapshots({ player: 'p8', purpose: 'disk-snapshot' })).toHaveLength(
      1,
    );
    expect(await provider.listSnapshots({ player: 'p9' })).toEqual([]);

    await provider.deleteDisk(disk);
    expect(await provider.getDisk(disk)).toBeNull();
    await provider.deleteDisk(disk); // absent: not an error

    const restored = await provider.createDiskFromSnapshot({
      name: disk,
      snapshotName: 'snap-p8',
      tags: tagsFor('p8', 's9', 'player-disk'),
    });
    expect(restored).toMatchObject({ name: disk, sizeGb: 300, diskState: 'Unattached' });
    await provider.deleteSnapshot('snap-p8');
    expect(await provider.getSnapshot('snap-p8')).toBeNull();
  });

  it('creates a player disk from a configured image', async () => {
    env = await startAzureEnv();
    const image = `/subscriptions/x/resourceGroups/img/providers/Microsoft.Compute/galleries/g/images/games/versions/1.0.0`;
    const disk = await env.provider.createDisk({
      name: 'disk-p9',
      sizeGb: 512,
      source: { kind: 'image', imageId: image, lun: 0 },
      tags: tagsFor('p9', 's9', 'player-disk'),
    });
    expect(disk.sizeGb).toBe(512);
    expect(env.fake.state.disk('disk-p9')?.creationData).toMatchObject({
      createOption: 'FromImage',
      galleryImageReference: { id: image, lun: 0 },
    });
  });

  it('lists Respawn VMs by tag, so the reconciler finds orphans', async () => {
    env = await startAzureEnv();
    const { provider } = env;
    for (const [player, session, tier] of [
      ['pa', 'sa', 'spot'],
      ['pb', 'sb', 'spot'],
      ['pc', 'sc', 'on_demand'],
    ] as const) {
      const { spec } = await provision(provider, player, session, { tier });
      await provider.createOrUpdateVm(spec);
    }
    const names = (vms: { name: string }[]): string[] => vms.map((v) => v.name).sort();
    expect(names(await provider.listVms())).toEqual(['vm-sa', 'vm-sb', 'vm-sc']);
    expect(names(await provider.listVms({ player: 'pa' }))).toEqual(['vm-sa']);
    expect(names(await provider.listVms({ session: 'sb' }))).toEqual(['vm-sb']);
    expect(names(await provider.listVms({ tier: 'spot' }))).toEqual(['vm-sa', 'vm-sb']);
    expect(await provider.listVms({ tier: 'on_demand', player: 'pa' })).toEqual([]);
    expect(names(await provider.listDisks({ purpose: 'player-disk' }))).toEqual([
      'disk-pa',
      'disk-pb',
      'disk-pc',
    ]);
  });

  it('a Spot eviction (Preempt, then Delete) leaves the player disk free for the resumed VM', async () => {
    env = await startAzureEnv();
    const { provider, fake } = env;
    const { disk, spec } = await provision(provider, 'p10', 's10');
    await provider.createOrUpdateVm(spec);
    const events: FakeVmEvent[] = [];
    fake.onEvent((e) => events.push(e));

    fake.preempt(spec.name, { noticeMs: 50 });
    const doc = fake.scheduledEvents(spec.name);
    expect(doc.Events).toEqual([
      expect.objectContaining({
        EventType: 'Preempt',
        Resources: [spec.name],
        EventStatus: 'Scheduled',
      }),
    ]);
    await eventually('the VM is evicted', () =>
      Promise.resolve(events.some((e) => e.type === 'vm.evicted')),
    );

    expect(events.find((e) => e.type === 'vm.evicted')).toMatchObject({
      policy: 'Delete',
      dataDisks: [disk],
    });
    expect(await provider.getVm(spec.name)).toBeNull();
    expect(await provider.getDisk(disk)).toMatchObject({
      diskState: 'Unattached',
      attachedToVm: null,
    });
    expect((await provider.getUsage(['lowPriorityCores']))[0]?.current).toBe(0);

    const resumed = await provision(provider, 'p10', 's10r', { tier: 'on_demand' });
    expect(await provider.createOrUpdateVm(resumed.spec)).toMatchObject({
      dataDiskNames: [disk],
      provisioningState: 'Succeeded',
    });
  });
});

function handMadeVm(fake: ArmFake, nic: string, disk: string): unknown {
  const rg = `/subscriptions/${fake.subscriptionId}/resourceGroups/${fake.resourceGroup}`;
  return {
    location: fake.location,
    tags: { app: 'respawn' },
    properties: {
      hardwareProfile: { vmSize: T4 },
      storageProfile: {
        osDisk: { createOption: 'FromImage', deleteOption: 'Delete' },
        dataDisks: [
          {
            lun: 0,
            createOption: 'Attach',
            deleteOption: 'Delete',
            managedDisk: { id: `${rg}/providers/Microsoft.Compute/disks/${disk}` },
          },
        ],
      },
      osProfile: { adminUsername: 'someone', adminPassword: 'whatever-1A' },
      networkProfile: {
        networkInterfaces: [{ id: `${rg}/providers/Microsoft.Network/networkInterfaces/${nic}` }],
      },
      priority: 'Spot',
      evictionPolicy: 'Delete',
    },
  };
}
