/**
 * The worker's side of the agent bootstrap: AGENT_TOKEN_SECRET and RESPAWN_AGENT_REPORT_URL
 * (set together or not at all) reach the Azure effects runner the worker starts
 * (actors/roles.ts), which gives each session VM it creates the bootstrap as userData.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, loadWorkerConfig } from '../../actors/config.ts';
import { startRoles, type Role } from '../../actors/roles.ts';
import {
  AzureCreateVm,
  agentToken,
  decodeAgentBootstrap,
  outAzureSubject,
} from '../../contracts/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { captureLog, startBus, type Bus } from '../gateway/support.ts';
import { armEffectsEnv, until } from './support.ts';

const SECRET = 'worker-side-agent-master-secret-0123456789';
const REPORT_URL = 'https://respawn.example.net/agent/report';

describe('worker configuration of the agent bootstrap', () => {
  it('takes both settings together, and names the missing one otherwise', () => {
    const both = loadWorkerConfig({
      AGENT_TOKEN_SECRET: SECRET,
      RESPAWN_AGENT_REPORT_URL: REPORT_URL,
    });
    expect(both).toMatchObject({
      AGENT_TOKEN_SECRET: SECRET,
      RESPAWN_AGENT_REPORT_URL: REPORT_URL,
    });
    expect(() => loadWorkerConfig({ AGENT_TOKEN_SECRET: SECRET })).toThrow(
      /RESPAWN_AGENT_REPORT_URL: required with AGENT_TOKEN_SECRET/,
    );
    expect(() => loadWorkerConfig({ RESPAWN_AGENT_REPORT_URL: REPORT_URL })).toThrow(
      /AGENT_TOKEN_SECRET: required with RESPAWN_AGENT_REPORT_URL/,
    );
    expect(() =>
      loadWorkerConfig({ AGENT_TOKEN_SECRET: 'short', RESPAWN_AGENT_REPORT_URL: 'ftp://x' }),
    ).toThrow(ConfigError);
  });
});

describe('the worker’s Azure effects role', () => {
  let bus: Bus;
  let arm: ArmFake;
  let roles: Role[] = [];

  beforeAll(async () => {
    bus = await startBus();
    arm = await startArmFake({
      subscriptionId: '00000000-0000-0000-0000-0000000000c3',
      resourceGroup: 'respawn-agent-roles',
      location: 'westindia',
      quotas: { lowPriorityCores: 16, standardNCASv3_T4Family: 16, cores: 100 },
      lroPolls: 1,
    });
    const cfg = loadWorkerConfig({
      NATS_URL: bus.nats.url,
      ...armEffectsEnv(arm, 'westindia'),
      AGENT_TOKEN_SECRET: SECRET,
      RESPAWN_AGENT_REPORT_URL: REPORT_URL,
    });
    roles = await startRoles(cfg, bus.nc, captureLog().log);
  });
  afterAll(async () => {
    for (const r of roles) await r.stop();
    await arm?.stop();
    await bus?.dispose();
  });

  it('gives a created session VM the bootstrap with the configured URL and the VM’s token', async () => {
    await bus.js.publish(
      outAzureSubject('westindia'),
      AzureCreateVm.encode({
        sessionId: 'w1-1',
        playerId: 'w1',
        vmName: 'vm-w1-1-a1-spotnc4',
        nicName: 'vm-w1-1-a1-spotnc4-nic',
        diskName: 'disk-w1',
        size: 'Standard_NC4as_T4_v3',
        priority: 'spot',
        tags: {},
      }),
      { msgID: 'roles-create-w1' },
    );
    await until('VM running', () => arm.state.vm('vm-w1-1-a1-spotnc4')?.powerState === 'running');
    const userData = arm.state.vm('vm-w1-1-a1-spotnc4')?.userData ?? '';
    expect(decodeAgentBootstrap(Buffer.from(userData, 'base64').toString('utf8'))).toEqual({
      v: 1,
      reportUrl: REPORT_URL,
      vmName: 'vm-w1-1-a1-spotnc4',
      sessionId: 'w1-1',
      playerId: 'w1',
      token: agentToken(SECRET, 'vm-w1-1-a1-spotnc4'),
    });
    // AZURE_VM_PUBLIC_IP's default: the VM is reachable at a public IP of its own.
    expect(arm.state.nic('vm-w1-1-a1-spotnc4-nic')?.publicIpName).toBe('vm-w1-1-a1-spotnc4-pip');
    expect(arm.state.publicIp('vm-w1-1-a1-spotnc4-pip')?.ipAddress).toMatch(/^203\.0\.113\./);
  });
});
