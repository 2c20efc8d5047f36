/**
 * The Azure side for session tests: the ARM fake, the real SDK's VmProvider pointed at it,
 * and the allocator's effects runner consuming `respawn.out.azure.<region>`.
 */
import type { Logger } from 'pino';
import {
  createAzureEffectsRunner,
  type AzureEffectsRunner,
} from '../../actors/allocator/effects.ts';
import { createDiskRecords } from '../../actors/allocator/disk-round.ts';
import {
  createAzureVmProvider,
  staticTokenCredential,
  type VmProvider,
} from '../../actors/allocator/azure/index.ts';
import { startArmFake, type ArmFake, type ArmFakeOptions } from '../../deploy/fakes/arm/index.ts';
import type { DeadLetterCounter } from '../../actors/ingress/router.ts';
import type { RuntimeEnv } from './runtime-env.ts';

export const TEST_SSH_KEY = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests test';

export interface CloudEnv {
  arm: ArmFake;
  provider: VmProvider;
  runner: AzureEffectsRunner;
  stop(): Promise<void>;
}

export async function startCloud(
  env: RuntimeEnv,
  opts: {
    region: string;
    fake?: Partial<ArmFakeOptions>;
    pollIntervalMs?: number;
    concurrency?: number;
    /** The runner's (and provider's) log; the environment's quiet one by default. */
    log?: Logger;
    /** Where the runner counts its dead letters (a worker passes its registry's counter). */
    deadLetters?: DeadLetterCounter;
  },
): Promise<CloudEnv> {
  const log = opts.log ?? env.log;
  const arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-000000000001',
    resourceGroup: 'respawn-test',
    location: opts.region,
    quotas: { lowPriorityCores: 8, standardNCASv3_T4Family: 8, cores: 100 },
    lroPolls: 1,
    ...opts.fake,
  });
  const provider = createAzureVmProvider({
    subscriptionId: arm.subscriptionId,
    resourceGroup: arm.resourceGroup,
    location: opts.region,
    credential: staticTokenCredential(),
    endpoint: arm.url,
    caCert: arm.caCert,
    pollIntervalMs: opts.pollIntervalMs ?? 10,
    log,
  });
  const runner = createAzureEffectsRunner({
    js: env.js,
    jsm: env.jsm,
    provider,
    log,
    ...(opts.deadLetters === undefined ? {} : { deadLetters: opts.deadLetters }),
    // As in a worker: disk reconciliation reads the players' recorded disks.
    diskRecords: createDiskRecords(env.db.knex, log),
    config: {
      region: opts.region,
      diskImageId: undefined,
      diskSizeGb: 256,
      vmImage: 'Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest',
      admin: { username: 'respawn', sshPublicKey: TEST_SSH_KEY },
      quotaNames: ['lowPriorityCores', 'standardNCASv3_T4Family'],
      concurrency: opts.concurrency ?? 8,
    },
  });
  await runner.start();
  return {
    arm,
    provider,
    runner,
    async stop() {
      await runner.stop();
      await arm.stop();
    },
  };
}
