/**
 * The ARM fake's IMDS endpoints the agent reads, over raw HTTPS: userData as base64 text,
 * the network document with the NIC's private IP (and public IP, when it has one), Scheduled
 * Events per VM, and Azure's rules (`Metadata: true`, `api-version`). The VM is named with the
 * fake-only `x-fake-vm` header.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { httpRequest } from '../../deploy/agent/http.ts';
import {
  createAzureVmProvider,
  staticTokenCredential,
  type VmProvider,
} from '../../actors/allocator/azure/index.ts';
import { FAKE_VM_HEADER, startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { captureLog } from '../gateway/support.ts';

let arm: ArmFake;
let provider: VmProvider;

beforeAll(async () => {
  arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-0000000000b1',
    resourceGroup: 'respawn-imds-test',
    location: 'centralindia',
    quotas: { lowPriorityCores: 16, standardNCASv3_T4Family: 16, cores: 100 },
    lroPolls: 1,
  });
  provider = createAzureVmProvider({
    subscriptionId: arm.subscriptionId,
    resourceGroup: arm.resourceGroup,
    location: 'centralindia',
    credential: staticTokenCredential(),
    endpoint: arm.url,
    caCert: arm.caCert,
    pollIntervalMs: 10,
    log: captureLog().log,
  });
  for (const [name, userData] of [
    ['vm-a', 'hello from vm-a'],
    ['vm-b', undefined],
  ] as const) {
    const tags = { player: 'p', session: name, tier: 'spot', purpose: 'test' } as const;
    await provider.createDisk({
      name: `disk-${name}`,
      sizeGb: 64,
      source: { kind: 'empty' },
      tags,
    });
    await provider.ensureNic({ name: `${name}-nic`, tags });
    await provider.createOrUpdateVm({
      name,
      nicName: `${name}-nic`,
      size: 'Standard_NC4as_T4_v3',
      tier: 'spot',
      dataDiskName: `disk-${name}`,
      image: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      admin: { username: 'respawn', sshPublicKey: 'ssh-ed25519 AAAAC3Nza test' },
      ...(userData === undefined ? {} : { userData }),
      tags,
    });
  }
});
afterAll(async () => {
  await arm?.stop();
});

function imds(
  path: string,
  headers: Record<string, string>,
  opts: { method?: 'GET' | 'POST'; body?: string } = {},
) {
  return httpRequest(new URL(path, arm.url), {
    ...opts,
    headers,
    ca: arm.caCert,
    timeoutMs: 5_000,
  });
}

const USER_DATA = '/metadata/instance/compute/userData?api-version=2021-01-01&format=text';
const NETWORK = '/metadata/instance/network?api-version=2021-02-01';
const EVENTS = '/metadata/scheduledevents?api-version=2020-07-01';

describe('the ARM fake’s IMDS', () => {
  it('serves each VM its own userData as base64 text, empty when it has none', async () => {
    const a = await imds(USER_DATA, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-a' });
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toMatch(/^text\/plain/);
    expect(Buffer.from(a.text, 'base64').toString('utf8')).toBe('hello from vm-a');
    const b = await imds(USER_DATA, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-b' });
    expect(b).toMatchObject({ status: 200, text: '' });
  });

  it('serves the network document with the VM’s NIC and private IP', async () => {
    const res = await imds(NETWORK, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-a' });
    expect(res.status).toBe(200);
    const nic = arm.state.nic('vm-a-nic');
    expect(JSON.parse(res.text)).toEqual({
      interface: [
        {
          ipv4: {
            ipAddress: [{ privateIpAddress: nic?.privateIp, publicIpAddress: '' }],
            subnet: [{ address: nic?.privateIp.replace(/\.\d+$/, '.0'), prefix: '24' }],
          },
          ipv6: { ipAddress: [] },
          macAddress: nic?.macAddress.replace(/-/g, ''),
        },
      ],
    });
  });

  it('shows the public IP on the NIC as Azure’s IMDS does (publicIpAddress)', async () => {
    const tags = { player: 'p', session: 'vm-c', tier: 'spot', purpose: 'test' } as const;
    await provider.createDisk({ name: 'disk-vm-c', sizeGb: 64, source: { kind: 'empty' }, tags });
    const nic = await provider.ensureNic({ name: 'vm-c-nic', publicIpName: 'vm-c-pip', tags });
    await provider.createOrUpdateVm({
      name: 'vm-c',
      nicName: 'vm-c-nic',
      size: 'Standard_NC4as_T4_v3',
      tier: 'spot',
      dataDiskName: 'disk-vm-c',
      image: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      admin: { username: 'respawn', sshPublicKey: 'ssh-ed25519 AAAAC3Nza test' },
      tags,
    });
    const res = await imds(NETWORK, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-c' });
    const doc = JSON.parse(res.text) as {
      interface: { ipv4: { ipAddress: { privateIpAddress: string; publicIpAddress: string }[] } }[];
    };
    expect(doc.interface[0]?.ipv4.ipAddress).toEqual([
      { privateIpAddress: nic.privateIp, publicIpAddress: nic.publicIp },
    ]);
    expect(nic.publicIp).toBe(arm.state.publicIp('vm-c-pip')?.ipAddress);
    expect(nic.publicIp).toMatch(/^203\.0\.113\.\d+$/);
  });

  it('keeps Azure’s rules: Metadata header, api-version, and a VM to answer for', async () => {
    expect((await imds(USER_DATA, { [FAKE_VM_HEADER]: 'vm-a' })).status).toBe(400);
    expect(
      (
        await imds('/metadata/instance/network', {
          Metadata: 'true',
          [FAKE_VM_HEADER]: 'vm-a',
        })
      ).status,
    ).toBe(400);
    expect((await imds(NETWORK, { Metadata: 'true' })).status).toBe(404);
    expect((await imds(USER_DATA, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-zz' })).status).toBe(
      404,
    );
  });

  it('shows a VM its own Scheduled Events, named by the header', async () => {
    const eventId = arm.preempt('vm-b', { noticeMs: 120_000 });
    const b = await imds(EVENTS, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-b' });
    expect(JSON.parse(b.text)).toMatchObject({
      Events: [{ EventId: eventId, EventType: 'Preempt', Resources: ['vm-b'] }],
    });
    const a = await imds(EVENTS, { Metadata: 'true', [FAKE_VM_HEADER]: 'vm-a' });
    expect(JSON.parse(a.text)).toMatchObject({ Events: [] });
  });
});
