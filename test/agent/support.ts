/**
 * What the agent's tests share: a private NATS with Respawn's topology, the real gateway (its
 * agent verifier derived from MASTER, and counting what it is shown), the ARM fake, the real
 * SDK's provider and the allocator's Azure effects runner configured with the agent bootstrap,
 * a fake streaming host (a TCP listener), and the reference agent run in-process against
 * the fake's IMDS.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import {
  AgentReport,
  AzureCreateVm,
  IngressSources,
  Streams,
  ingressSubject,
  outAzureSubject,
  type MessageOf,
} from '../../contracts/index.ts';
import {
  createAzureEffectsRunner,
  type AzureEffectsRunner,
} from '../../actors/allocator/effects.ts';
import {
  createAzureVmProvider,
  staticTokenCredential,
  type VmProvider,
} from '../../actors/allocator/azure/index.ts';
import { startAgent, type Agent, type AgentOptions } from '../../deploy/agent/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { agentTokenVerifier } from '../../gateway/http/auth.ts';
import {
  captureLog,
  startBus,
  startGateway,
  stored,
  type Bus,
  type LogCapture,
  type RunningTestGateway,
} from '../gateway/support.ts';

export const MASTER = 'agent-master-secret-for-tests-0123456789';
export const REGION = 'centralindia';
export const SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForAgentTests test';

/** A worker's settings for running `region`'s Azure effects against the ARM fake. */
export function armEffectsEnv(arm: ArmFake, region: string): Record<string, string> {
  return {
    RESPAWN_REGION: region,
    RESPAWN_AZURE_EFFECTS: 'true',
    AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
    AZURE_RESOURCE_GROUP: arm.resourceGroup,
    AZURE_SSH_PUBLIC_KEY: SSH_KEY,
    AZURE_ARM_ENDPOINT: arm.url,
    AZURE_ARM_CA_FILE: arm.caCertPath,
  };
}

export interface Stack {
  bus: Bus;
  gateway: RunningTestGateway;
  arm: ArmFake;
  provider: VmProvider;
  runner: AzureEffectsRunner;
  /** The runner's log (the token must never be in it). */
  runnerLogs: LogCapture;
  /** Every (vmName, token) the gateway was shown, in order. */
  shown: { vmName: string; token: string }[];
  /** While set, the gateway cannot check tokens and answers 503. */
  gatewayDown: { value: boolean };
  reportUrl: string;
  dispose(): Promise<void>;
}

export async function startStack(): Promise<Stack> {
  const bus = await startBus();
  const shown: Stack['shown'] = [];
  const gatewayDown = { value: false };
  const real = agentTokenVerifier(MASTER);
  const gateway = await startGateway(bus, {
    verifyAgent: (vmName, token) => {
      shown.push({ vmName, token });
      if (gatewayDown.value) throw new Error('token store unreachable (test)');
      return real(vmName, token);
    },
  });
  const arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-0000000000a9',
    resourceGroup: 'respawn-agent-test',
    location: REGION,
    quotas: { lowPriorityCores: 64, standardNCASv3_T4Family: 64, cores: 200 },
    lroPolls: 1,
  });
  const runnerLogs = captureLog();
  const provider = createAzureVmProvider({
    subscriptionId: arm.subscriptionId,
    resourceGroup: arm.resourceGroup,
    location: REGION,
    credential: staticTokenCredential(),
    endpoint: arm.url,
    caCert: arm.caCert,
    pollIntervalMs: 10,
    log: runnerLogs.log,
  });
  const reportUrl = `${gateway.url}/agent/report`;
  const runner = createAzureEffectsRunner({
    js: bus.js,
    jsm: bus.jsm,
    provider,
    log: runnerLogs.log,
    config: {
      region: REGION,
      diskImageId: undefined,
      diskSizeGb: 64,
      vmImage: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      admin: { username: 'respawn', sshPublicKey: SSH_KEY },
      quotaNames: ['lowPriorityCores', 'standardNCASv3_T4Family'],
      concurrency: 4,
      agent: { reportUrl, masterSecret: MASTER },
    },
  });
  await runner.start();
  return {
    bus,
    gateway,
    arm,
    provider,
    runner,
    runnerLogs,
    shown,
    gatewayDown,
    reportUrl,
    async dispose() {
      await runner.stop();
      await arm.stop();
      await gateway.close();
      await bus.dispose();
    },
  };
}

export interface SessionVm {
  playerId: string;
  sessionId: string;
  vmName: string;
  nicName: string;
}

let vmCounter = 0;

/** Asks the effects runner to create a Spot session VM, as the allocator does; waits till it runs. */
export async function createSessionVm(stack: Stack, playerId: string): Promise<SessionVm> {
  vmCounter += 1;
  const sessionId = `${playerId}-${vmCounter}`;
  const vmName = `vm-${sessionId}-a1-spotnc4`;
  const nicName = `${vmName}-nic`;
  await stack.bus.js.publish(
    outAzureSubject(REGION),
    AzureCreateVm.encode({
      sessionId,
      playerId,
      vmName,
      nicName,
      diskName: `disk-${playerId}`,
      size: 'Standard_NC4as_T4_v3',
      priority: 'spot',
      tags: {},
    }),
    { msgID: `create-${vmName}` },
  );
  await until(`VM ${vmName} running`, () =>
    Promise.resolve(stack.arm.state.vm(vmName)?.powerState === 'running'),
  );
  return { playerId, sessionId, vmName, nicName };
}

/** Polls `check` until true, failing with `what` after the deadline. */
export async function until(
  what: string,
  check: () => Promise<boolean> | boolean,
  timeoutMs = 20_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** A stand-in for Sunshine: something that accepts TCP connections on a port. */
export interface StreamHost {
  port: number;
  listen(): Promise<void>;
  close(): Promise<void>;
}

/** Picks a free port now; listens only when told (so `ready` can be seen to wait for it). */
export async function streamHost(): Promise<StreamHost> {
  const probe = createServer();
  await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
  const { port } = probe.address() as AddressInfo;
  await new Promise<void>((r) => probe.close(() => r()));
  let server: Server | undefined;
  return {
    port,
    async listen() {
      server = createServer((socket) => socket.destroy());
      await new Promise<void>((r) => server!.listen(port, '127.0.0.1', r));
    },
    async close() {
      if (server !== undefined) await new Promise<void>((r) => server!.close(() => r()));
    },
  };
}

export interface RunningAgent {
  agent: Agent;
  logs: LogCapture;
  pinFile: string;
  cleanup(): Promise<void>;
}

/** The reference agent, in-process, playing `vmName` against the fake's IMDS. */
export async function runAgent(
  stack: Stack,
  vmName: string,
  port: number,
  over: Partial<AgentOptions> = {},
): Promise<RunningAgent> {
  const dir = await mkdtemp(path.join(tmpdir(), 'respawn-agent-'));
  const pinFile = path.join(dir, 'pin', 'pairing-pin');
  const logs = captureLog();
  const agent = await startAgent({
    imdsUrl: stack.arm.url,
    imdsCa: stack.arm.caCert,
    fakeVm: vmName,
    streamHost: '127.0.0.1',
    streamPort: port,
    pinFile,
    heartbeatMs: 200,
    idle: () => Promise.resolve(undefined),
    eventsPollMs: 100,
    readyPollMs: 50,
    maxAttempts: 4,
    retryBaseMs: 20,
    retryMaxMs: 100,
    httpTimeoutMs: 3_000,
    log: logs.log,
    ...over,
  });
  return {
    agent,
    logs,
    pinFile,
    async cleanup() {
      await agent.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export type StoredReport = MessageOf<typeof AgentReport> & { msgId: string };

/** The agent reports stored on `respawn.in.agent`, for one VM. */
export async function reportsOf(stack: Stack, vmName: string): Promise<StoredReport[]> {
  const all = await stored(
    stack.bus.jsm,
    Streams.ingress.name,
    ingressSubject(IngressSources.agent),
  );
  return all
    .map((m) => ({ ...AgentReport.decode(m.data), msgId: m.headers['Nats-Msg-Id'] ?? '' }))
    .filter((r) => r.vmName === vmName);
}
