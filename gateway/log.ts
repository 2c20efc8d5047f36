/**
 * The gateway's root logger. Secrets are redacted here, once, for every child logger: the bot
 * token, webhook secrets, signatures and agent tokens, whether they appear as configuration
 * keys or as request headers. Code never logs them on purpose either.
 */
import { pino, type Logger } from 'pino';
import { redactSecrets } from '../contracts/index.ts';

export const REDACT_PATHS = [
  'token',
  '*.token',
  'secret',
  '*.secret',
  'signature',
  '*.signature',
  'authorization',
  '*.authorization',
  'TELEGRAM_BOT_TOKEN',
  '*.TELEGRAM_BOT_TOKEN',
  'TELEGRAM_WEBHOOK_SECRET',
  '*.TELEGRAM_WEBHOOK_SECRET',
  'RAZORPAY_WEBHOOK_SECRET',
  '*.RAZORPAY_WEBHOOK_SECRET',
  'RAZORPAY_KEY_SECRET',
  '*.RAZORPAY_KEY_SECRET',
  'keySecret',
  '*.keySecret',
  'AGENT_TOKEN_SECRET',
  '*.AGENT_TOKEN_SECRET',
  'REDIS_URL',
  '*.REDIS_URL',
  'headers["x-telegram-bot-api-secret-token"]',
  'headers["x-razorpay-signature"]',
  'headers["x-respawn-agent-token"]',
  '*.headers["x-telegram-bot-api-secret-token"]',
  '*.headers["x-razorpay-signature"]',
  '*.headers["x-respawn-agent-token"]',
];

export function createGatewayLogger(opts: { level: string; name?: string }): Logger {
  return pino({
    name: opts.name ?? 'respawn-gateway',
    level: opts.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // Path redaction covers the known places; the walk catches every other depth.
    formatters: { log: (o) => redactSecrets(o) as Record<string, unknown> },
    serializers: { err: (e: unknown) => redactSecrets(e) },
  });
}

/** Replaces every occurrence of the given secrets in a text (an error message, a URL). */
export function scrub(text: string, secrets: readonly string[]): string {
  let out = text;
  for (const s of secrets) if (s.length > 0) out = out.split(s).join('[redacted]');
  return out;
}
