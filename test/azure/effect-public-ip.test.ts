/**
 * The allocator's create and delete effects and the session VM's public IP, through the real
 * SDK against the fake ARM: by default (AZURE_VM_PUBLIC_IP=true) a VM gets `<vmName>-pip` on its
 * NIC and loses it with the VM, and its NIC carries the region's streaming NSG (made once, the
 * Moonlight/Sunshine ports only, never deleted); turned off, it gets neither, and a delete still
 * removes a public IP a VM made earlier with the setting on may have left.
 */
import { afterEach, describe, expect, it } from 'vitest';
import {
  AllocCreateResult,
  AllocDeleteResult,
  AzureCreateVm,
  AzureDeleteVm,
  type MessageOf,
} from '../../contracts/index.ts';
import {
  STREAMING_RULES,
  createStreamingSecurityGroup,
  streamingNsgNameOf,
  type StreamingSecurityGroup,
} from '../../actors/allocator/azure/index.ts';
import {
  publicIpNameOf,
  runEffect,
  type AzureEffectsConfig,
} from '../../actors/allocator/effect-work.ts';
import { captureLog } from '../gateway/support.ts';
import { T4, armRequest, startAzureEnv, type AzureEnv } from './support.ts';

let env: AzureEnv | undefined;
afterEach(async () => {
  await env?.dispose();
  env = undefined;
});

const config: AzureEffectsConfig = {
  region: 'centralindia',
  diskImageId: undefined,
  diskSizeGb: 64,
  vmImage: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
  admin: { username: 'respawn', sshPublicKey: 'ssh-ed25519 AAAAC3Nza test' },
  quotaNames: ['lowPriorityCores'],
  concurrency: 1,
};

function create(session: string): MessageOf<typeof AzureCreateVm> {
  const vmName = `vm-${session}-a1-spotnc4`;
  return {
    type: AzureCreateVm.type,
    sessionId: session,
    playerId: session.split('-')[0] ?? session,
    vmName,
    nicName: `${vmName}-nic`,
    diskName: `disk-${session}`,
    size: T4,
    priority: 'spot',
    tags: {},
  };
}

function remove(c: MessageOf<typeof AzureCreateVm>): MessageOf<typeof AzureDeleteVm> {
  return {
    type: AzureDeleteVm.type,
    sessionId: c.sessionId,
    vmName: c.vmName,
    nicName: c.nicName,
  };
}

const NSG = streamingNsgNameOf(config.region);

/** One runner's streaming NSG per environment, as effects.ts keeps one per runner. */
const nsgs = new WeakMap<AzureEnv, StreamingSecurityGroup>();
function nsgOf(azure: AzureEnv): StreamingSecurityGroup {
  let nsg = nsgs.get(azure);
  if (nsg === undefined) {
    nsg = createStreamingSecurityGroup({
      provider: azure.provider,
      region: config.region,
      log: captureLog().log,
    });
    nsgs.set(azure, nsg);
  }
  return nsg;
}

type Result = { ok: boolean; error?: { kind: string; code: string } };

/** Runs one effect against `env`, returning the results it reported, decoded. */
async function run(
  azure: AzureEnv,
  cfg: AzureEffectsConfig,
  e: MessageOf<typeof AzureCreateVm> | MessageOf<typeof AzureDeleteVm>,
): Promise<Result[]> {
  const results: Result[] = [];
  await runEffect(
    {
      provider: azure.provider,
      config: cfg,
      log: captureLog().log,
      diskRecords: undefined,
      streamingNsg: nsgOf(azure),
      report: (_id, subject, data) => {
        results.push(
          subject.endsWith('create_result')
            ? AllocCreateResult.decode(data)
            : AllocDeleteResult.decode(data),
        );
        return Promise.resolve();
      },
    },
    e,
    `effect-${e.vmName}`,
  );
  return results;
}

describe('the session VM’s public IP', () => {
  it('is made with the VM by default behind the shared streaming NSG, the same on a retried create, and deleted with it (the NSG stays)', async () => {
    env = await startAzureEnv();
    const { fake } = env;
    const c = create('p1-1');
    const pip = publicIpNameOf(c.vmName);
    expect(pip).toBe(`${c.vmName}-pip`);

    expect(await run(env, config, c)).toEqual([expect.objectContaining({ ok: true })]);
    const address = fake.state.publicIp(pip)?.ipAddress;
    expect(address).toMatch(/^203\.0\.113\.\d+$/);
    expect(fake.state.nic(c.nicName)?.publicIpName).toBe(pip);
    expect(fake.state.publicIp(pip)?.tags).toMatchObject({
      app: 'respawn',
      player: 'p1',
      session: 'p1-1',
      purpose: 'respawn-session',
    });

    // The NIC carries the region's streaming NSG, which lets in only Moonlight's ports.
    expect(fake.state.nic(c.nicName)?.networkSecurityGroupName).toBe(NSG);
    const nsg = fake.state.nsg(NSG);
    expect(nsg?.tags).toEqual({
      app: 'respawn',
      purpose: 'respawn-streaming',
      region: 'centralindia',
    });
    expect(nsg?.rules).toEqual([
      expect.objectContaining({
        protocol: 'Tcp',
        access: 'Allow',
        direction: 'Inbound',
        sourceAddressPrefixes: ['Internet'],
        destinationPortRanges: ['47984', '47989', '48010'],
      }),
      expect.objectContaining({
        protocol: 'Udp',
        access: 'Allow',
        direction: 'Inbound',
        sourceAddressPrefixes: ['Internet'],
        destinationPortRanges: ['47998-48000'],
      }),
    ]);
    expect(nsg?.rules.map((r) => r.name)).toEqual(STREAMING_RULES.map((r) => r.name));
    // Not the web UI (47990) nor anything else.
    expect(nsg?.rules.flatMap((r) => r.destinationPortRanges)).not.toContain('47990');

    const nsgPuts = (): number =>
      fake.state
        .requests()
        .filter((r) => r.method === 'PUT' && r.path.includes('/networkSecurityGroups/')).length;
    expect(nsgPuts()).toBe(1);
    expect(await run(env, config, c)).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.publicIps()).toHaveLength(1);
    expect(fake.state.publicIp(pip)?.ipAddress).toBe(address);
    // Converged once: the retried create does not PUT it again, and the NIC keeps it.
    expect(nsgPuts()).toBe(1);
    expect(fake.state.nic(c.nicName)?.networkSecurityGroupName).toBe(NSG);

    // A second session's VM shares it.
    const d = create('p3-1');
    expect(await run(env, config, d)).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.nic(d.nicName)?.networkSecurityGroupName).toBe(NSG);
    expect(fake.state.nsgs()).toHaveLength(1);

    expect(await run(env, config, remove(c))).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.vm(c.vmName)).toBeUndefined();
    expect(fake.state.publicIp(pip)).toBeUndefined();
    // Again, with everything already gone: still fine.
    expect(await run(env, config, remove(c))).toEqual([expect.objectContaining({ ok: true })]);
    // The other VMs' group is never deleted, not even with the last VM.
    expect(await run(env, config, remove(d))).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.publicIps()).toEqual([]);
    expect(fake.state.nsg(NSG)).toBeDefined();
    expect(
      fake.state
        .requests()
        .filter((r) => r.method === 'DELETE' && r.path.includes('/networkSecurityGroups/')),
    ).toEqual([]);
  });

  it('a create converges the NSG again when it was removed behind Respawn’s back', async () => {
    env = await startAzureEnv();
    const { fake } = env;
    const first = create('p4-1');
    expect(await run(env, config, first)).toEqual([expect.objectContaining({ ok: true })]);
    await run(env, config, remove(first));
    // Someone deletes the (now unused) group; this runner believes it converged.
    expect(
      (await armRequest(fake, 'DELETE', `Microsoft.Network/networkSecurityGroups/${NSG}`)).status,
    ).toBe(202);
    fake.settle();
    expect(fake.state.nsg(NSG)).toBeUndefined();

    // The NIC naming it is refused as Azure does; the create reports it…
    const c = create('p4-2');
    expect(await run(env, config, c)).toEqual([
      expect.objectContaining({
        ok: false,
        error: expect.objectContaining({
          kind: 'not_found',
          code: 'InvalidResourceReference',
        }) as unknown,
      }),
    ]);
    // …and the retried create PUTs the group again and gets its NIC and VM.
    expect(await run(env, config, c)).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.nsg(NSG)?.rules).toHaveLength(STREAMING_RULES.length);
    expect(fake.state.nic(c.nicName)?.networkSecurityGroupName).toBe(NSG);
    expect(fake.state.vm(c.vmName)?.provisioningState).toBe('Succeeded');
  });

  it('is not made, nor the NSG, when the operator turns it off, and a delete still takes one left from before', async () => {
    env = await startAzureEnv();
    const { fake } = env;
    const off = { ...config, publicIp: false };
    const c = create('p2-1');
    expect(await run(env, off, c)).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.nic(c.nicName)?.publicIpName).toBeNull();
    expect(fake.state.publicIps()).toEqual([]);
    // A relay or VPN in front: no NSG made, none on the NIC.
    expect(fake.state.nic(c.nicName)?.networkSecurityGroupName).toBeNull();
    expect(fake.state.nsgs()).toEqual([]);
    await run(env, off, remove(c));

    // Made while the setting was on, deleted after it was turned off.
    const earlier = create('p2-2');
    await run(env, config, earlier);
    expect(fake.state.publicIp(publicIpNameOf(earlier.vmName))).toBeDefined();
    expect(await run(env, off, remove(earlier))).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.publicIps()).toEqual([]);
    expect(fake.state.nics()).toEqual([]);
  });
});
