/**
 * The allocator's create and delete effects and the session VM's public IP, through the real
 * SDK against the fake ARM: by default (AZURE_VM_PUBLIC_IP=true) a VM gets `<vmName>-pip` on its
 * NIC and loses it with the VM; turned off, it gets none, and a delete still removes one a VM
 * made earlier with the setting on may have left.
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
  publicIpNameOf,
  runEffect,
  type AzureEffectsConfig,
} from '../../actors/allocator/effect-work.ts';
import { captureLog } from '../gateway/support.ts';
import { T4, startAzureEnv, type AzureEnv } from './support.ts';

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

/** Runs one effect against `env`, returning the results it reported, decoded. */
async function run(
  azure: AzureEnv,
  cfg: AzureEffectsConfig,
  e: MessageOf<typeof AzureCreateVm> | MessageOf<typeof AzureDeleteVm>,
): Promise<{ ok: boolean }[]> {
  const results: { ok: boolean }[] = [];
  await runEffect(
    {
      provider: azure.provider,
      config: cfg,
      log: captureLog().log,
      diskRecords: undefined,
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
  it('is made with the VM by default, the same on a retried create, and deleted with it', async () => {
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

    expect(await run(env, config, c)).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.publicIps()).toHaveLength(1);
    expect(fake.state.publicIp(pip)?.ipAddress).toBe(address);

    expect(await run(env, config, remove(c))).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.vm(c.vmName)).toBeUndefined();
    expect(fake.state.publicIps()).toEqual([]);
    // Again, with everything already gone: still fine.
    expect(await run(env, config, remove(c))).toEqual([expect.objectContaining({ ok: true })]);
  });

  it('is not made when the operator turns it off, and a delete still takes one left from before', async () => {
    env = await startAzureEnv();
    const { fake } = env;
    const off = { ...config, publicIp: false };
    const c = create('p2-1');
    expect(await run(env, off, c)).toEqual([expect.objectContaining({ ok: true })]);
    expect(fake.state.nic(c.nicName)?.publicIpName).toBeNull();
    expect(fake.state.publicIps()).toEqual([]);
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
