/**
 * Runs the Telegram Bot API fake on its own (compose profile `fakes`, or by hand):
 *   node --import tsx deploy/fakes/telegram/main.ts
 * Point the gateway at it with TELEGRAM_API_ROOT=<its URL> and the same TELEGRAM_BOT_TOKEN.
 * The sandbox routes (`/_fake/chats…`) let a person play the player. SIGTERM or SIGINT stops it.
 */
import { z } from 'zod';
import { createRootLogger } from '../../../actors/log.ts';
import { startTelegramFake } from './index.ts';

/** The token `npm start` gives its in-process fake; any token of the Bot API's shape works. */
const LOCAL_FAKE_TOKEN = '1000001:respawn-local-fake-token';

/** Its environment, validated at start (exported for the compose test). */
export const TelegramFakeEnv = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  TELEGRAM_FAKE_HOST: z.string().min(1).default('127.0.0.1'),
  TELEGRAM_FAKE_PORT: z.coerce.number().int().min(0).max(65535).default(8081),
  /** The token the fake accepts (the gateway's); other tokens get 401. */
  TELEGRAM_BOT_TOKEN: z
    .string()
    .regex(/^\d+:[A-Za-z0-9_-]+$/, 'must look like 123456:ABC-DEF… (a Bot API token)')
    .default(LOCAL_FAKE_TOKEN),
  TELEGRAM_FAKE_BOT_USERNAME: z
    .string()
    .regex(/^[A-Za-z0-9_]{5,32}$/, 'must be 5-32 of A-Z a-z 0-9 _')
    .default('respawn_fake_bot'),
  /** Pause before a failed webhook delivery is tried again. */
  TELEGRAM_FAKE_WEBHOOK_RETRY_MS: z.coerce.number().int().min(10).max(60_000).default(500),
});

async function main(): Promise<void> {
  const boot = createRootLogger({ level: 'info', name: 'telegram-fake' });
  const parsed = TelegramFakeEnv.safeParse(process.env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    boot.fatal({ problems }, `invalid configuration: ${problems.join('; ')}`);
    process.exit(2);
  }
  const env = parsed.data;
  const log = createRootLogger({ level: env.LOG_LEVEL, name: 'telegram-fake' });
  const fake = await startTelegramFake({
    token: env.TELEGRAM_BOT_TOKEN,
    host: env.TELEGRAM_FAKE_HOST,
    port: env.TELEGRAM_FAKE_PORT,
    botUsername: env.TELEGRAM_FAKE_BOT_USERNAME,
    webhookRetryMs: env.TELEGRAM_FAKE_WEBHOOK_RETRY_MS,
  });
  log.info({ url: fake.url, bot: fake.bot.username }, 'telegram fake listening');

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'telegram fake stopping');
    fake.stop().then(
      () => {
        log.info('telegram fake stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'telegram fake did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    createRootLogger({ level: 'info', name: 'telegram-fake' }).fatal(
      { err },
      'telegram fake failed',
    );
    process.exit(1);
  });
}
