/**
 * `npm start`'s environment → LocalOptions, validated with a message naming each culprit.
 * A third party's credentials, when all given, replace its fake.
 */
import type { Logger } from 'pino';
import { z } from 'zod';
import { loadBillingConfig } from '../../actors/billing/index.ts';
import { loadSessionTimings } from '../../actors/session/index.ts';
import { loadAllocatorSettings } from '../../actors/allocator/index.ts';
import { resolveSecretFiles } from '../../contracts/index.ts';
import type { LocalOptions } from './options.ts';

const port = (dflt: number) => z.coerce.number().int().min(0).max(65535).default(dflt);
const ms = () => z.coerce.number().int().min(0).max(3_600_000).optional();

const Env = z.object({
  NATS_URL: z.string().min(1).optional(),
  RESPAWN_LOCAL_NATS_PORT: port(4223),
  NATS_SERVER_BIN: z.string().min(1).optional(),
  DATABASE_URL: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'must be a postgres:// URL')
    .default('postgres://postgres@127.0.0.1:5432/respawn'),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .default('redis://127.0.0.1:6379'),
  RESPAWN_LOCAL_HOST: z.string().min(1).default('127.0.0.1'),
  GATEWAY_PORT: port(8080),
  RESPAWN_LOCAL_ARM_PORT: port(8443),
  RESPAWN_LOCAL_TELEGRAM_PORT: port(8081),
  RESPAWN_LOCAL_RAZORPAY_PORT: port(8082),
  RESPAWN_LOCAL_SANDBOX_PORT: port(8090),
  RESPAWN_REGION: z
    .string()
    .regex(/^[a-z0-9]{2,32}$/)
    .default('centralindia'),
  AGENT_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  RESPAWN_AGENT_REPORT_URL: z.url({ protocol: /^https?$/ }).optional(),
  RESPAWN_LOCAL_AGENT_SIM: z.enum(['true', 'false']).optional(),
  RESPAWN_LOCAL_AGENT_BOOT_MS: ms(),
  RESPAWN_LOCAL_AGENT_HEARTBEAT_MS: ms(),
  ARM_FAKE_LRO_LATENCY_MS: ms(),
  AZURE_SUBSCRIPTION_ID: z.string().min(1).optional(),
  AZURE_RESOURCE_GROUP: z.string().min(1).optional(),
  AZURE_TENANT_ID: z.string().min(1).optional(),
  AZURE_CLIENT_ID: z.string().min(1).optional(),
  AZURE_CLIENT_SECRET: z.string().min(1).optional(),
  AZURE_DISK_IMAGE_ID: z.string().min(1).optional(),
  AZURE_SSH_PUBLIC_KEY: z.string().min(1).optional(),
  TELEGRAM_BOT_TOKEN: z.string().min(1).optional(),
  TELEGRAM_API_ROOT: z.url().optional(),
  TELEGRAM_MODE: z.enum(['webhook', 'polling']).optional(),
  TELEGRAM_WEBHOOK_URL: z.url().optional(),
  TELEGRAM_WEBHOOK_SECRET: z.string().min(1).optional(),
  RAZORPAY_KEY_ID: z.string().min(1).optional(),
  RAZORPAY_KEY_SECRET: z.string().min(1).optional(),
  RAZORPAY_WEBHOOK_SECRET: z.string().min(1).optional(),
  RAZORPAY_API_URL: z.url().optional(),
});

export class LocalConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'LocalConfigError';
  }
}

function defined<T extends Record<string, unknown>>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

export function loadLocalOptions(env: NodeJS.ProcessEnv, log: Logger): LocalOptions {
  // Secrets may be given as <NAME>_FILE, as in every Respawn process (contracts/secrets.ts).
  const resolved = resolveSecretFiles(env);
  const r = Env.safeParse(resolved.env);
  const lines = [
    ...resolved.problems,
    ...(r.success ? [] : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)),
  ];
  if (r.success) {
    const e = r.data;
    if ((e.AZURE_SUBSCRIPTION_ID === undefined) !== (e.AZURE_RESOURCE_GROUP === undefined)) {
      lines.push('  AZURE_SUBSCRIPTION_ID and AZURE_RESOURCE_GROUP: set both, or neither (fake)');
    }
    const rzp = [e.RAZORPAY_KEY_ID, e.RAZORPAY_KEY_SECRET, e.RAZORPAY_WEBHOOK_SECRET];
    if (rzp.some((v) => v !== undefined) && rzp.some((v) => v === undefined)) {
      lines.push(
        '  RAZORPAY_KEY_ID, RAZORPAY_KEY_SECRET, RAZORPAY_WEBHOOK_SECRET: set all, or none (fake)',
      );
    }
  }
  if (!r.success || lines.length > 0) {
    throw new LocalConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  const e = r.data;
  return {
    log,
    ...defined({ natsUrl: e.NATS_URL, natsServerBin: e.NATS_SERVER_BIN }),
    natsPort: e.RESPAWN_LOCAL_NATS_PORT,
    databaseUrl: e.DATABASE_URL,
    redisUrl: e.REDIS_URL,
    host: e.RESPAWN_LOCAL_HOST,
    gatewayPort: e.GATEWAY_PORT,
    ports: {
      arm: e.RESPAWN_LOCAL_ARM_PORT,
      telegram: e.RESPAWN_LOCAL_TELEGRAM_PORT,
      razorpay: e.RESPAWN_LOCAL_RAZORPAY_PORT,
      sandbox: e.RESPAWN_LOCAL_SANDBOX_PORT,
    },
    region: e.RESPAWN_REGION,
    ...defined({ agentSecret: e.AGENT_TOKEN_SECRET, agentReportUrl: e.RESPAWN_AGENT_REPORT_URL }),
    ...(e.RESPAWN_LOCAL_AGENT_SIM === undefined
      ? {}
      : { agentSim: e.RESPAWN_LOCAL_AGENT_SIM === 'true' }),
    timings: defined({
      agentBootMs: e.RESPAWN_LOCAL_AGENT_BOOT_MS,
      agentHeartbeatMs: e.RESPAWN_LOCAL_AGENT_HEARTBEAT_MS,
      lroLatencyMs: e.ARM_FAKE_LRO_LATENCY_MS,
    }),
    billing: loadBillingConfig(env),
    session: loadSessionTimings(env),
    allocator: loadAllocatorSettings(env),
    ...(e.AZURE_SUBSCRIPTION_ID === undefined || e.AZURE_RESOURCE_GROUP === undefined
      ? {}
      : {
          azure: {
            subscriptionId: e.AZURE_SUBSCRIPTION_ID,
            resourceGroup: e.AZURE_RESOURCE_GROUP,
            ...defined({
              tenantId: e.AZURE_TENANT_ID,
              clientId: e.AZURE_CLIENT_ID,
              clientSecret: e.AZURE_CLIENT_SECRET,
              diskImageId: e.AZURE_DISK_IMAGE_ID,
              sshPublicKey: e.AZURE_SSH_PUBLIC_KEY,
            }),
          },
        }),
    ...(e.TELEGRAM_BOT_TOKEN === undefined
      ? {}
      : {
          telegram: {
            token: e.TELEGRAM_BOT_TOKEN,
            ...defined({
              apiRoot: e.TELEGRAM_API_ROOT,
              mode: e.TELEGRAM_MODE,
              webhookUrl: e.TELEGRAM_WEBHOOK_URL,
              webhookSecret: e.TELEGRAM_WEBHOOK_SECRET,
            }),
          },
        }),
    ...(e.RAZORPAY_KEY_ID === undefined ||
    e.RAZORPAY_KEY_SECRET === undefined ||
    e.RAZORPAY_WEBHOOK_SECRET === undefined
      ? {}
      : {
          razorpay: {
            keyId: e.RAZORPAY_KEY_ID,
            keySecret: e.RAZORPAY_KEY_SECRET,
            webhookSecret: e.RAZORPAY_WEBHOOK_SECRET,
            ...defined({ apiUrl: e.RAZORPAY_API_URL }),
          },
        }),
  };
}
