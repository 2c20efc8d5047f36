/** Worker configuration from the environment, validated at start with a message naming the culprit. */
import { z } from 'zod';
import {
  defaultSessionConfig,
  sessionEnvShape,
  sessionTimings,
  timingProblems,
  type SessionConfig,
} from './session/index.ts';
import {
  allocatorEnvShape,
  allocatorSettings,
  defaultAllocatorConfig,
  type AllocatorConfig,
} from './allocator/index.ts';
import {
  ActorKinds,
  IngressSources,
  MAX_PARTITION_WINDOW,
  databaseUrlWithPassword,
  natsCredentialProblem,
  natsEnvShape,
  resolveSecretFiles,
  streamReplicasShape,
  type ActorKind,
  type IngressSource,
} from '../contracts/index.ts';

const kinds = Object.values(ActorKinds) as [ActorKind, ...ActorKind[]];
const sources = Object.values(IngressSources) as [IngressSource, ...IngressSource[]];
const bool = (dflt: 'true' | 'false') =>
  z
    .enum(['true', 'false'])
    .default(dflt)
    .transform((v) => v === 'true');
const optional = z.string().min(1).optional();

/** `a, b,,c` → `['a', 'b', 'c']`: a list variable's items, blanks dropped. */
const commaList = (s: string): string[] =>
  s
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
const intFrom = (min: number, max: number, dflt: number) =>
  z.coerce.number().int().min(min).max(max).default(dflt);

export const WorkerConfigSchema = z
  .object({
    ...natsEnvShape,
    ...streamReplicasShape,
    DATABASE_URL: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
      .default('postgres://postgres@127.0.0.1:5432/respawn'),
    /** Put into DATABASE_URL as its password, so only the password need be a secret. */
    DATABASE_PASSWORD: optional,
    LOG_LEVEL: z
      .enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'])
      .default('info'),
    RESPAWN_ACTORS: z
      .string()
      .default('demo')
      .transform(commaList)
      .pipe(z.array(z.enum(kinds)).min(1)),
    RESPAWN_MAX_BATCH: intFrom(1, 4096, 256),
    RESPAWN_CONCURRENCY: intFrom(1, 64, 2),
    RESPAWN_MAX_ATTEMPTS: intFrom(1, 1000, 10),
    RESPAWN_DB_POOL: intFrom(1, 100, 10),
    /**
     * Override of contracts' PARTITION_WINDOWS, e.g. `alloc=512,demo=64`: deliveries a
     * partition consumer hands out at once (> 1: pulled by its owning worker only).
     */
    RESPAWN_PARTITION_WINDOWS: z
      .string()
      .default('')
      .transform((s, ctx) => {
        const out: Partial<Record<ActorKind, number>> = {};
        for (const part of commaList(s)) {
          const m = /^([a-z]+)=(\d+)$/.exec(part);
          const kind = m?.[1] as ActorKind | undefined;
          const n = Number(m?.[2]);
          if (kind === undefined || !kinds.includes(kind) || n < 1 || n > MAX_PARTITION_WINDOW) {
            ctx.addIssue({
              code: 'custom',
              message: `"${part}" is not <kind>=<1..${MAX_PARTITION_WINDOW}> with kind one of ${kinds.join(', ')}`,
            });
            return z.NEVER;
          }
          out[kind] = n;
        }
        return out;
      }),
    /** Port of /healthz, /readyz and /metrics (actors/http.ts); 0 turns the server off. */
    RESPAWN_HTTP_PORT: intFrom(0, 65535, 9464),
    /** Test and replay deployments only: the worker's clock runs this far ahead of real time. */
    RESPAWN_CLOCK_OFFSET_MS: z.coerce.number().int().default(0),
    /**
     * `system` (default), or `replay`: test and replay deployments only, time follows the
     * replayer's clock on NATS (`npm run replay -- play --clock`, docs/replay.md).
     */
    RESPAWN_CLOCK: z.enum(['system', 'replay']).default('system'),
    RESPAWN_MIGRATE: z
      .enum(['true', 'false'])
      .default('true')
      .transform((v) => v === 'true'),
    /** The Azure region sessions are placed in when a start names none. */
    RESPAWN_REGION: z
      .string()
      .regex(/^[a-z0-9]{2,32}$/, 'must be an Azure region name like centralindia')
      .default('centralindia'),
    /**
     * Regions with an allocator and an Azure effects runner, besides RESPAWN_REGION: a start
     * naming another (from another service) is dead-lettered, not left waiting forever.
     */
    RESPAWN_REGIONS: z
      .string()
      .default('')
      .transform(commaList)
      .pipe(z.array(z.string().regex(/^[a-z0-9]{2,32}$/, 'must be Azure region names'))),
    /** Ask billing before starting a session (off only for tests and demos). */
    RESPAWN_SESSION_ADMISSION: z
      .enum(['true', 'false'])
      .default('true')
      .transform((v) => v === 'true'),
    /** The session actor's timings (`actors/session/config.ts`). */
    ...sessionEnvShape,
    /** The allocator's candidates and timings (`actors/allocator/config.ts`). */
    ...allocatorEnvShape,
    /** Only apply migrations, then exit (a one-shot migration step in a deployment). */
    RESPAWN_MIGRATE_ONLY: bool('false'),
    /**
     * The bot's username (getMe's), for the Telegram router: a command addressed to another
     * bot in a group (`/play@other_bot`) is ignored. Unset: any `@` command is ignored in groups.
     */
    TELEGRAM_BOT_USERNAME: z
      .string()
      .regex(/^@?[A-Za-z0-9_]{1,64}$/, 'must be a Telegram username like respawn_bot')
      .optional(),
    /** Ingress routers this process runs as well: telegram, agent, razorpay. */
    RESPAWN_INGRESS: z
      .string()
      .default('')
      .transform(commaList)
      .pipe(z.array(z.enum(sources))),
    /**
     * The allocator's disk reconciliation: how often players' disks in Azure are compared with
     * their recorded state (0: never), and how far apart two rounds must agree before a
     * finding is acted on.
     */
    RESPAWN_DISK_RECONCILE_SECONDS: intFrom(0, 7 * 86_400, 3_600),
    RESPAWN_DISK_RECONCILE_GRACE_SECONDS: intFrom(0, 7 * 86_400, 1_800),
    /** Run the allocator's Azure effects runner for RESPAWN_REGION in this process. */
    RESPAWN_AZURE_EFFECTS: bool('false'),
    /**
     * The effects consumer's ack_wait. A runner that dies stalls its region's effects for
     * about twice this (the lease outlives it, actors/roles.ts); a live one holds its effects
     * however long Azure takes.
     */
    RESPAWN_AZURE_EFFECTS_ACK_WAIT_SECONDS: intFrom(2, 600, 20),
    AZURE_SUBSCRIPTION_ID: optional,
    AZURE_RESOURCE_GROUP: optional,
    AZURE_TENANT_ID: optional,
    AZURE_CLIENT_ID: optional,
    AZURE_CLIENT_SECRET: optional,
    AZURE_SSH_PUBLIC_KEY: optional,
    AZURE_DISK_IMAGE_ID: optional,
    AZURE_VM_IMAGE: z
      .string()
      .min(1)
      .default('Canonical:0001-com-ubuntu-server-jammy:22_04-lts-gen2:latest'),
    AZURE_DISK_SIZE_GB: z.coerce.number().int().min(32).max(4096).default(256),
    /**
     * Each session VM gets a static public IPv4, the address players connect to. `false` for
     * an operator whose players reach VMs through a relay or VPN (agents report private IPs).
     */
    AZURE_VM_PUBLIC_IP: bool('true'),
    /**
     * How often a long-running Azure operation is polled. Azure suggests ~2 s; a replay on a
     * clock running N× faster polls N× more often, or every create looks N× slower.
     */
    AZURE_POLL_INTERVAL_MS: intFrom(10, 60_000, 2_000),
    /** An ARM-compatible endpoint instead of Azure (the fake), and the CA file to trust for it. */
    AZURE_ARM_ENDPOINT: z.url().optional(),
    AZURE_ARM_CA_FILE: optional,
    /** The gateway's `POST /agent/report` as VMs reach it: put in each VM's agent bootstrap. */
    RESPAWN_AGENT_REPORT_URL: z.url({ protocol: /^https?$/ }).optional(),
    /** The VM agents' master secret, the gateway's own: each VM's token derives from it. */
    AGENT_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  })
  .superRefine((c, ctx) => {
    if (c.RESPAWN_CLOCK === 'replay' && c.RESPAWN_CLOCK_OFFSET_MS !== 0) {
      ctx.addIssue({
        code: 'custom',
        path: ['RESPAWN_CLOCK_OFFSET_MS'],
        message: 'must be 0 with RESPAWN_CLOCK=replay (the replayer sets the time)',
      });
    }
    for (const [k, other] of [
      ['RESPAWN_AGENT_REPORT_URL', 'AGENT_TOKEN_SECRET'],
      ['AGENT_TOKEN_SECRET', 'RESPAWN_AGENT_REPORT_URL'],
    ] as const) {
      if (c[k] === undefined && c[other] !== undefined) {
        ctx.addIssue({ code: 'custom', path: [k], message: `required with ${other}` });
      }
    }
    for (const [path, message] of timingProblems(sessionTimings(c))) {
      ctx.addIssue({ code: 'custom', path: [path], message });
    }
    if (!c.RESPAWN_AZURE_EFFECTS) return;
    for (const k of [
      'AZURE_SUBSCRIPTION_ID',
      'AZURE_RESOURCE_GROUP',
      'AZURE_SSH_PUBLIC_KEY',
    ] as const) {
      if (c[k] === undefined) {
        ctx.addIssue({
          code: 'custom',
          path: [k],
          message: 'required when RESPAWN_AZURE_EFFECTS=true',
        });
      }
    }
  });
export type WorkerConfig = z.infer<typeof WorkerConfigSchema>;

/** The allocator's configuration for this worker (and the quota names its effects report). */
export function allocatorConfigFrom(cfg: WorkerConfig): AllocatorConfig {
  return {
    ...defaultAllocatorConfig,
    ...allocatorSettings(cfg),
    diskReconcileMs: cfg.RESPAWN_DISK_RECONCILE_SECONDS * 1_000,
    diskGraceMs: cfg.RESPAWN_DISK_RECONCILE_GRACE_SECONDS * 1_000,
  };
}

/** The cheapest On-Demand candidate's price, when there is one (the session's balance rule). */
function onDemandPrice(candidates: readonly { tier: string; pricePerHourPaise: number }[]): {
  onDemandPricePerHourPaise?: number;
} {
  const prices = candidates.filter((c) => c.tier === 'on_demand').map((c) => c.pricePerHourPaise);
  return prices.length === 0 ? {} : { onDemandPricePerHourPaise: Math.min(...prices) };
}

/** The session actor's configuration for this worker. */
export function sessionConfigFrom(cfg: WorkerConfig): SessionConfig {
  return {
    ...defaultSessionConfig,
    // Billing's minimum balance to start: enough for the cheapest candidate.
    cheapestPricePerHourPaise: Math.min(
      ...allocatorSettings(cfg).candidates.map((c) => c.pricePerHourPaise),
    ),
    ...onDemandPrice(allocatorSettings(cfg).candidates),
    region: cfg.RESPAWN_REGION,
    regions: [...new Set([cfg.RESPAWN_REGION, ...cfg.RESPAWN_REGIONS])],
    requireAdmission: cfg.RESPAWN_SESSION_ADMISSION,
    ...sessionTimings(cfg),
  };
}

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/** Secrets may come from files (`<NAME>_FILE`); every problem is named in one error. */
export function loadWorkerConfig(env: NodeJS.ProcessEnv): WorkerConfig {
  const resolved = resolveSecretFiles(env);
  const r = WorkerConfigSchema.safeParse(resolved.env);
  const lines = [
    ...resolved.problems,
    ...(r.success ? [] : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)),
  ];
  const credentials = natsCredentialProblem(resolved.env);
  if (credentials !== undefined) lines.push(credentials);
  const db = r.success
    ? databaseUrlWithPassword(r.data.DATABASE_URL, r.data.DATABASE_PASSWORD)
    : undefined;
  if (db?.problem !== undefined) lines.push(db.problem);
  if (!r.success || lines.length > 0 || db === undefined) {
    throw new ConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return { ...r.data, DATABASE_URL: db.url };
}
