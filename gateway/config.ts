/**
 * Gateway configuration from the environment, validated at start with a message naming every
 * missing or wrong variable (and never echoing a secret's value).
 */
import { z } from 'zod';
import {
  MAX_PAYLOAD_BYTES,
  natsCredentialProblem,
  natsEnvShape,
  resolveSecretFiles,
  streamReplicasShape,
} from '../contracts/index.ts';

/** Update types the Bot API knows; TELEGRAM_ALLOWED_UPDATES picks from these. */
export const TELEGRAM_UPDATE_TYPES = [
  'message',
  'edited_message',
  'channel_post',
  'edited_channel_post',
  'business_connection',
  'business_message',
  'edited_business_message',
  'deleted_business_messages',
  'message_reaction',
  'message_reaction_count',
  'inline_query',
  'chosen_inline_result',
  'callback_query',
  'shipping_query',
  'pre_checkout_query',
  'purchased_paid_media',
  'poll',
  'poll_answer',
  'my_chat_member',
  'chat_member',
  'chat_join_request',
  'chat_boost',
  'removed_chat_boost',
] as const;

/** Telegram's documented webhook source ranges: limited per player, not per IP. */
export const TELEGRAM_WEBHOOK_RANGES = '149.154.160.0/20,91.108.4.0/22';

export interface RateLimitConfig {
  /** Redis key prefix; tests use a unique one. */
  prefix: string;
  ip: { points: number; durationS: number };
  player: { points: number; durationS: number };
  /** IPs or CIDRs never limited per IP. */
  exempt: readonly string[];
  /** A Redis answer slower than this is replaced by the in-process limiter's. */
  timeoutMs: number;
}

/** What `createGateway` needs; the process entry builds it from the environment. */
export interface GatewayConfig {
  telegram: {
    mode: 'webhook' | 'polling';
    /** Absent: every webhook request is refused (polling mode needs none). */
    webhookSecret: string | undefined;
    allowedUpdates: readonly string[];
  };
  razorpay: { webhookSecret: string };
  rateLimit: RateLimitConfig;
  publishTimeoutMs: number;
  readyTimeoutMs: number;
  bodyLimitBytes: number;
  trustProxy: boolean;
}

const int = (min: number, max: number, dflt: number) =>
  z.coerce.number().int().min(min).max(max).default(dflt);

const bool = (dflt: boolean) =>
  z
    .enum(['true', 'false'])
    .default(dflt ? 'true' : 'false')
    .transform((v) => v === 'true');

const list = (dflt: string) =>
  z
    .string()
    .default(dflt)
    .transform((s) =>
      s
        .split(',')
        .map((x) => x.trim())
        .filter((x) => x.length > 0),
    );

const secret = (what: string) =>
  z.string({ error: `required: ${what}` }).min(1, `required: ${what}`);

export const GatewayEnvSchema = z.object({
  ...natsEnvShape,
  ...streamReplicasShape,
  /**
   * Converge Respawn's streams at start (as workers do). Off with the least-privilege NATS user
   * (deploy/nats/auth.conf): the gateway then only checks the streams it uses exist.
   */
  GATEWAY_ENSURE_STREAMS: bool(true),
  REDIS_URL: z
    .string()
    .regex(/^rediss?:\/\//, 'must be a redis:// URL')
    .default('redis://127.0.0.1:6379'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  GATEWAY_HOST: z.string().min(1).default('0.0.0.0'),
  GATEWAY_PORT: int(0, 65535, 8080),
  GATEWAY_TRUST_PROXY: bool(false),
  GATEWAY_PUBLISH_TIMEOUT_MS: int(100, 30_000, 2_000),
  GATEWAY_READY_TIMEOUT_MS: int(50, 10_000, 1_000),
  GATEWAY_BODY_LIMIT_BYTES: int(1024, 1024 * 1024, MAX_PAYLOAD_BYTES),
  TELEGRAM_BOT_TOKEN: secret('the bot token from @BotFather').regex(
    /^\d+:[A-Za-z0-9_-]+$/,
    'must look like 123456:ABC-DEF… (the bot token from @BotFather)',
  ),
  TELEGRAM_API_ROOT: z.url().default('https://api.telegram.org'),
  TELEGRAM_MODE: z.enum(['webhook', 'polling']).default('webhook'),
  TELEGRAM_WEBHOOK_SECRET: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,256}$/, 'must be 1-256 of A-Z a-z 0-9 _ - (Telegram’s rule)')
    .optional(),
  TELEGRAM_WEBHOOK_URL: z.url().optional(),
  TELEGRAM_ALLOWED_UPDATES: list('message,edited_message,callback_query,my_chat_member').pipe(
    z.array(z.enum(TELEGRAM_UPDATE_TYPES)).min(1),
  ),
  TELEGRAM_POLL_TIMEOUT_S: int(0, 50, 30),
  TELEGRAM_OUTBOUND: bool(true),
  TELEGRAM_PER_CHAT_INTERVAL_MS: int(0, 60_000, 1_000),
  TELEGRAM_GLOBAL_PER_SECOND: int(1, 1_000, 30),
  TELEGRAM_CALL_TIMEOUT_S: int(1, 120, 15),
  RAZORPAY_WEBHOOK_SECRET: secret('the webhook secret set in the Razorpay dashboard'),
  AGENT_TOKEN_SECRET: z.string().min(32, 'must be at least 32 characters').optional(),
  RATE_LIMIT_PREFIX: z.string().min(1).default('respawn:rl:'),
  RATE_LIMIT_IP_POINTS: int(1, 1_000_000, 300),
  RATE_LIMIT_IP_DURATION_S: int(1, 86_400, 10),
  RATE_LIMIT_PLAYER_POINTS: int(1, 1_000_000, 20),
  RATE_LIMIT_PLAYER_DURATION_S: int(1, 86_400, 10),
  RATE_LIMIT_IP_EXEMPT: list(TELEGRAM_WEBHOOK_RANGES),
  RATE_LIMIT_TIMEOUT_MS: int(10, 5_000, 250),
});
export type GatewayEnv = z.infer<typeof GatewayEnvSchema>;

export class GatewayConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GatewayConfigError';
  }
}

/** Rules across variables, checked even when others are wrong so one run names them all. */
function crossChecks(env: NodeJS.ProcessEnv): string[] {
  const mode = env.TELEGRAM_MODE ?? 'webhook';
  if (mode === 'webhook' && (env.TELEGRAM_WEBHOOK_SECRET ?? '') === '') {
    return [
      '  TELEGRAM_WEBHOOK_SECRET: required when TELEGRAM_MODE=webhook (the secret_token given to setWebhook)',
    ];
  }
  return [];
}

/** The only way in: secrets from `<NAME>_FILE`, the schema, and the cross-variable rules. */
export function loadGatewayEnv(env: NodeJS.ProcessEnv): GatewayEnv {
  const resolved = resolveSecretFiles(env);
  const r = GatewayEnvSchema.safeParse(resolved.env);
  const credentials = natsCredentialProblem(resolved.env);
  // zod messages name the rule, never the offending value, so no secret is echoed.
  const lines = [
    ...resolved.problems,
    ...(r.success ? [] : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`)),
    ...crossChecks(resolved.env),
    ...(credentials === undefined ? [] : [credentials]),
  ];
  if (!r.success || lines.length > 0) {
    throw new GatewayConfigError(`invalid gateway configuration:\n${lines.join('\n')}`);
  }
  return r.data;
}

export function gatewayConfigFrom(env: GatewayEnv): GatewayConfig {
  return {
    telegram: {
      mode: env.TELEGRAM_MODE,
      webhookSecret: env.TELEGRAM_WEBHOOK_SECRET,
      allowedUpdates: env.TELEGRAM_ALLOWED_UPDATES,
    },
    razorpay: { webhookSecret: env.RAZORPAY_WEBHOOK_SECRET },
    rateLimit: {
      prefix: env.RATE_LIMIT_PREFIX,
      ip: { points: env.RATE_LIMIT_IP_POINTS, durationS: env.RATE_LIMIT_IP_DURATION_S },
      player: { points: env.RATE_LIMIT_PLAYER_POINTS, durationS: env.RATE_LIMIT_PLAYER_DURATION_S },
      exempt: env.RATE_LIMIT_IP_EXEMPT,
      timeoutMs: env.RATE_LIMIT_TIMEOUT_MS,
    },
    publishTimeoutMs: env.GATEWAY_PUBLISH_TIMEOUT_MS,
    readyTimeoutMs: env.GATEWAY_READY_TIMEOUT_MS,
    bodyLimitBytes: env.GATEWAY_BODY_LIMIT_BYTES,
    trustProxy: env.GATEWAY_TRUST_PROXY,
  };
}
