/**
 * The Azure side of the local run: the ARM fake (when no subscription is configured) and the
 * allocator's effects runner on the real SDK, pointed at the fake or at Azure.
 */
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import {
  createAzureEffectsRunner,
  type AzureEffectsRunner,
} from '../../actors/allocator/effects.ts';
import {
  createAzureCredential,
  createAzureVmProvider,
  staticTokenCredential,
} from '../../actors/allocator/azure/index.ts';
import type { DiskRecordSource } from '../../actors/allocator/disk-round.ts';
import { startArmFake, type ArmFake } from '../fakes/arm/index.ts';

export interface AzureSettings {
  subscriptionId: string;
  resourceGroup: string;
  tenantId?: string;
  clientId?: string;
  clientSecret?: string;
  /** Image a player's disk is created from on first play (empty disk when absent). */
  diskImageId?: string;
  sshPublicKey?: string;
}

export interface FakeArmSettings {
  host: string;
  port: number;
  /** How long a create takes in the fake (a VM's boot as Azure reports it). */
  lroLatencyMs: number;
  lroPolls: number;
}

export interface LocalAzure {
  arm: ArmFake | undefined;
  /** Where the SDK talks to. */
  url: string;
  runner: AzureEffectsRunner;
  stop(): Promise<void>;
}

const FAKE_SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTheLocalRun respawn-local';
const FAKE_SUBSCRIPTION = '00000000-0000-0000-0000-000000000000';

export async function startLocalAzure(opts: {
  js: JetStreamClient;
  jsm: JetStreamManager;
  log: Logger;
  region: string;
  /** Absent: the ARM fake. */
  azure: AzureSettings | undefined;
  fake: FakeArmSettings;
  pollIntervalMs: number;
  /** The VM agent's bootstrap given to each session VM (userData). */
  agent?: { reportUrl: string; masterSecret: string };
  /** The players' recorded disks, for the disk reconciler's rounds. */
  diskRecords?: DiskRecordSource;
}): Promise<LocalAzure> {
  let arm: ArmFake | undefined;
  if (opts.azure === undefined) {
    arm = await startArmFake({
      subscriptionId: FAKE_SUBSCRIPTION,
      resourceGroup: 'respawn',
      location: opts.region,
      host: opts.fake.host,
      port: opts.fake.port,
      lroLatencyMs: opts.fake.lroLatencyMs,
      lroPolls: opts.fake.lroPolls,
    });
  }
  const provider =
    arm === undefined
      ? createAzureVmProvider({
          subscriptionId: opts.azure!.subscriptionId,
          resourceGroup: opts.azure!.resourceGroup,
          location: opts.region,
          credential: createAzureCredential({
            ...(opts.azure!.tenantId === undefined ? {} : { tenantId: opts.azure!.tenantId }),
            ...(opts.azure!.clientId === undefined ? {} : { clientId: opts.azure!.clientId }),
            ...(opts.azure!.clientSecret === undefined
              ? {}
              : { clientSecret: opts.azure!.clientSecret }),
          }),
          log: opts.log,
        })
      : createAzureVmProvider({
          subscriptionId: arm.subscriptionId,
          resourceGroup: arm.resourceGroup,
          location: opts.region,
          credential: staticTokenCredential(),
          endpoint: arm.url,
          caCert: arm.caCert,
          pollIntervalMs: opts.pollIntervalMs,
          log: opts.log,
        });
  const runner = createAzureEffectsRunner({
    js: opts.js,
    jsm: opts.jsm,
    provider,
    log: opts.log,
    ...(opts.diskRecords === undefined ? {} : { diskRecords: opts.diskRecords }),
    config: {
      region: opts.region,
      diskImageId: opts.azure?.diskImageId,
      diskSizeGb: 256,
      vmImage: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      admin: { username: 'respawn', sshPublicKey: opts.azure?.sshPublicKey ?? FAKE_SSH_KEY },
      quotaNames: ['lowPriorityCores', 'standardNCASv3_T4Family'],
      concurrency: 8,
      // `publicIp` left at its default (true), as a worker's AZURE_VM_PUBLIC_IP: each VM gets a
      // public IP (the fake's from 203.0.113.0/24), the host its agent reports.
      ...(opts.agent === undefined ? {} : { agent: opts.agent }),
    },
  });
  try {
    await runner.start();
  } catch (err) {
    await arm?.stop();
    throw err;
  }
  return {
    arm,
    url: arm?.url ?? 'https://management.azure.com',
    runner,
    async stop() {
      await runner.stop();
      await arm?.stop();
    },
  };
}
