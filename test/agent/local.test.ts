/**
 * `npm start` with the simulated agents off: the local run's Azure effects runner gives each
 * session VM the agent bootstrap (the local gateway's report URL, the run's agent secret), so
 * the real reference agent, playing that VM against the ARM fake's IMDS, is taken by the
 * local gateway.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  AzureCreateVm,
  agentToken,
  decodeAgentBootstrap,
  outAzureSubject,
} from '../../contracts/index.ts';
import { startAgent } from '../../deploy/agent/index.ts';
import type { LocalRun } from '../../deploy/local/index.ts';
import { startLocalRun, type LocalTestRun } from '../support/local-run.ts';
import { quietLog } from '../support/runtime-env.ts';
import { streamHost, until } from './support.ts';

const SECRET = 'local-run-agent-secret-0123456789abcdefgh';
let local: LocalTestRun | undefined;
let run: LocalRun;
let nc: NatsConnection;

beforeAll(async () => {
  local = await startLocalRun({
    agentSecret: SECRET,
    agentSim: false,
    timings: { lroLatencyMs: 50, lroPolls: 1, azurePollMs: 50 },
  });
  run = local.run;
  nc = await connect({ servers: local.nats.url });
}, 60_000);

afterAll(async () => {
  await nc?.close();
  await local?.stop();
});

it('gives local session VMs a bootstrap the real agent reports with, to the local gateway', async () => {
  const arm = run.arm!;
  const vmName = 'vm-l1-1-a1-spotnc4';
  await jetstream(nc).publish(
    outAzureSubject(run.config.session.region),
    AzureCreateVm.encode({
      sessionId: 'l1-1',
      playerId: 'l1',
      vmName,
      nicName: `${vmName}-nic`,
      diskName: 'disk-l1',
      size: 'Standard_NC4as_T4_v3',
      priority: 'spot',
      tags: {},
    }),
    { msgID: 'local-create-l1' },
  );
  await until('VM running', () => arm.state.vm(vmName)?.powerState === 'running');
  const bootstrap = decodeAgentBootstrap(
    Buffer.from(arm.state.vm(vmName)?.userData ?? '', 'base64').toString('utf8'),
  );
  expect(bootstrap).toMatchObject({
    reportUrl: `${run.gatewayUrl}/agent/report`,
    vmName,
    token: agentToken(SECRET, vmName),
  });

  const sunshine = await streamHost();
  await sunshine.listen();
  const dir = await mkdtemp(path.join(tmpdir(), 'respawn-agent-local-'));
  const agent = await startAgent({
    imdsUrl: arm.url,
    imdsCa: arm.caCert,
    fakeVm: vmName,
    streamHost: '127.0.0.1',
    streamPort: sunshine.port,
    pinFile: path.join(dir, 'pin'),
    heartbeatMs: 60_000,
    idle: () => Promise.resolve(undefined),
    eventsPollMs: 200,
    readyPollMs: 50,
    maxAttempts: 3,
    retryBaseMs: 20,
    retryMaxMs: 100,
    httpTimeoutMs: 3_000,
    log: quietLog(),
  });
  try {
    await until('ready accepted by the local gateway', () => agent.view().accepted.ready === 1);
  } finally {
    await agent.stop();
    await sunshine.close();
    await rm(dir, { recursive: true, force: true });
  }
});
