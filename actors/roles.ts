/**
 * What a worker process runs besides its actors, chosen by configuration: the ingress routers
 * (Telegram updates, VM agent reports, Razorpay webhooks → commands) and the allocator's
 * Azure effects runner. Each is an independent consumer; any process may host any of them.
 * The routers run in every process that hosts them, side by side; a region's effects runner in
 * one at a time (below).
 */
import { readFileSync } from 'node:fs';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';
import { allocatorSettings } from './allocator/index.ts';
import {
  createKvLease,
  createLeasedRole,
  defaultHolder,
  type LeaseTiming,
} from '../contracts/index.ts';
import { createRoleMetrics, deadLetterCounter } from './runtime/metrics.ts';
import { createPgLease, roleLeaseName } from './runtime/role-lease.ts';
import { createAzureEffectsRunner } from './allocator/effects.ts';
import { createDiskRecords } from './allocator/disk-round.ts';
import {
  createAzureCredential,
  createAzureVmProvider,
  staticTokenCredential,
} from './allocator/azure/index.ts';
import type { WorkerConfig } from './config.ts';
import {
  createAgentIngress,
  createRazorpayIngress,
  createTelegramIngress,
} from './ingress/index.ts';

export interface Role {
  name: string;
  stop(): Promise<void>;
}

/**
 * A region's Azure effects run in one worker at a time: a player's effects must run in order
 * (a failed VM deleted before the next candidate's create attaches the disk, an archive never
 * beside a create), which the runner keeps within its process only. The workers take turns
 * through a lease per region (`rt_lease` row `role.azure-effects.<region>`; without a database,
 * the KV bucket `respawn_azure_effects`, key the region); its time to live covers the effects
 * consumer's ack_wait, so a crashed runner's effects come back before the next runner starts.
 */
export const AZURE_EFFECTS_BUCKET = 'respawn_azure_effects';

/**
 * The effects lease's timing for a consumer ack_wait: renewed every quarter of it (at most
 * 5 s), fenced after three quarters (at most 15 s), and living fence + ack_wait + one renewal,
 * so a runner that cannot renew pauses before its lease can expire, and a crashed runner's
 * effects are redelivered before the next runner starts. The default (20 s): 5, 15 and 40 s.
 */
export function effectsLeaseTiming(ackWaitMs: number): LeaseTiming {
  const renewMs = Math.min(5_000, ackWaitMs / 4);
  const fenceMs = Math.min(15_000, (ackWaitMs * 3) / 4);
  return { renewMs, fenceMs, ttlMs: fenceMs + ackWaitMs + renewMs };
}

export async function startRoles(
  cfg: WorkerConfig,
  nc: NatsConnection,
  log: Logger,
  /** The worker's database: the effects runner reads players' recorded disks from it. */
  deps: {
    knex?: Knex;
    /** Tests: who this worker says it is. */
    holder?: string;
    /** The worker's metrics: `respawn_worker_role_active` is set there. */
    registry?: Registry;
  } = {},
): Promise<Role[]> {
  const roles: Role[] = [];
  const dead = deps.registry === undefined ? {} : { deadLetters: deadLetterCounter(deps.registry) };
  for (const source of cfg.RESPAWN_INGRESS) {
    const router =
      source === 'telegram'
        ? createTelegramIngress({
            nc,
            log,
            ...dead,
            ...(cfg.TELEGRAM_BOT_USERNAME === undefined
              ? {}
              : { botUsername: cfg.TELEGRAM_BOT_USERNAME }),
          })
        : source === 'agent'
          ? createAgentIngress({ nc, log, ...dead })
          : createRazorpayIngress({ nc, log, ...dead });
    await router.start();
    roles.push({ name: `ingress-${source}`, stop: () => router.stop() });
  }
  if (cfg.RESPAWN_AZURE_EFFECTS) {
    const provider = createAzureVmProvider({
      subscriptionId: cfg.AZURE_SUBSCRIPTION_ID!,
      resourceGroup: cfg.AZURE_RESOURCE_GROUP!,
      location: cfg.RESPAWN_REGION,
      // An ARM-compatible endpoint without client credentials is the local fake: it takes
      // any bearer token, so no identity provider is asked.
      credential:
        cfg.AZURE_ARM_ENDPOINT !== undefined && cfg.AZURE_CLIENT_ID === undefined
          ? staticTokenCredential()
          : createAzureCredential({
              ...(cfg.AZURE_TENANT_ID === undefined ? {} : { tenantId: cfg.AZURE_TENANT_ID }),
              ...(cfg.AZURE_CLIENT_ID === undefined ? {} : { clientId: cfg.AZURE_CLIENT_ID }),
              ...(cfg.AZURE_CLIENT_SECRET === undefined
                ? {}
                : { clientSecret: cfg.AZURE_CLIENT_SECRET }),
            }),
      ...(cfg.AZURE_ARM_ENDPOINT === undefined ? {} : { endpoint: cfg.AZURE_ARM_ENDPOINT }),
      ...(cfg.AZURE_ARM_CA_FILE === undefined
        ? {}
        : { caCert: readFileSync(cfg.AZURE_ARM_CA_FILE, 'utf8') }),
      pollIntervalMs: cfg.AZURE_POLL_INTERVAL_MS,
      log,
    });
    const jsm = await jetstreamManager(nc);
    const ackWaitMs = cfg.RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS * 1_000;
    const runnerDeps: Parameters<typeof createAzureEffectsRunner>[0] = {
      ackWaitMs,
      js: jetstream(nc),
      jsm,
      provider,
      log,
      ...dead,
      ...(deps.knex === undefined ? {} : { diskRecords: createDiskRecords(deps.knex, log) }),
      config: {
        region: cfg.RESPAWN_REGION,
        diskImageId: cfg.AZURE_DISK_IMAGE_ID,
        diskSizeGb: cfg.AZURE_DISK_SIZE_GB,
        vmImage: cfg.AZURE_VM_IMAGE,
        publicIp: cfg.AZURE_VM_PUBLIC_IP,
        admin: { username: 'respawn', sshPublicKey: cfg.AZURE_SSH_PUBLIC_KEY! },
        quotaNames: [...new Set(allocatorSettings(cfg).candidates.map((c) => c.quotaName))],
        concurrency: 16,
        ...(cfg.AGENT_TOKEN_SECRET === undefined || cfg.RESPAWN_AGENT_REPORT_URL === undefined
          ? {}
          : {
              agent: {
                reportUrl: cfg.RESPAWN_AGENT_REPORT_URL,
                masterSecret: cfg.AGENT_TOKEN_SECRET,
              },
            }),
      },
    };
    if (cfg.AGENT_TOKEN_SECRET === undefined) {
      log.warn(
        'AGENT_TOKEN_SECRET and RESPAWN_AGENT_REPORT_URL are not set: VMs get no agent bootstrap',
      );
    }
    const holder = deps.holder ?? defaultHolder();
    const timing = effectsLeaseTiming(ackWaitMs);
    const roleName = `azure-effects.${cfg.RESPAWN_REGION}`;
    const active = deps.registry === undefined ? undefined : createRoleMetrics(deps.registry);
    active?.set({ role: roleName }, 0);
    const leased = createLeasedRole({
      log,
      role: `the Azure effects runner of ${cfg.RESPAWN_REGION}`,
      // In the worker's database; a process without one (a test, a tool) keeps it in NATS.
      lease:
        deps.knex === undefined
          ? createKvLease({
              nc,
              jsm,
              bucket: AZURE_EFFECTS_BUCKET,
              key: cfg.RESPAWN_REGION,
              description: 'Workers: which worker runs each region’s Azure effects (a lease)',
              holder,
              ttlMs: timing.ttlMs,
            })
          : createPgLease({
              knex: deps.knex,
              name: roleLeaseName(roleName),
              holder,
              ttlMs: timing.ttlMs,
            }),
      holder,
      timing,
      ackWaitMs,
      async run() {
        const runner = createAzureEffectsRunner(runnerDeps);
        await runner.start();
        return runner;
      },
      onActive: (on) => active?.set({ role: roleName }, on ? 1 : 0),
    });
    await leased.start();
    roles.push({ name: 'azure-effects', stop: () => leased.stop() });
  }
  for (const r of roles) log.info({ role: r.name }, 'role started');
  return roles;
}
