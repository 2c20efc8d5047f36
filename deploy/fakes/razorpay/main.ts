/**
 * Runs the Razorpay fake on its own (compose profile `fakes`, or by hand):
 *   node --import tsx deploy/fakes/razorpay/main.ts
 * Point the gateway at it with RAZORPAY_API_URL=<its URL> and the same RAZORPAY_KEY_ID,
 * RAZORPAY_KEY_SECRET and RAZORPAY_WEBHOOK_SECRET; the checkout page (`/pay/<link id>`) fires
 * signed webhooks at RAZORPAY_FAKE_WEBHOOK_URL. SIGTERM or SIGINT stops it.
 */
import { z } from 'zod';
import { createRootLogger } from '../../../actors/log.ts';
import { startRazorpayFake } from './index.ts';

/** The key pair `npm start` gives its in-process fake. */
const LOCAL_FAKE_KEY = { id: 'rzp_test_respawnlocal', secret: 'respawn-local-key-secret' };

/** Its environment, validated at start (exported for the compose test). */
export const RazorpayFakeEnv = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  RAZORPAY_FAKE_HOST: z.string().min(1).default('127.0.0.1'),
  RAZORPAY_FAKE_PORT: z.coerce.number().int().min(0).max(65535).default(8082),
  /** The API key pair the fake accepts (Basic auth), the same the gateway is given. */
  RAZORPAY_KEY_ID: z.string().min(1).default(LOCAL_FAKE_KEY.id),
  RAZORPAY_KEY_SECRET: z.string().min(1).default(LOCAL_FAKE_KEY.secret),
  /** Signs the webhooks; must be the gateway's, or it refuses them (as it should). */
  RAZORPAY_WEBHOOK_SECRET: z.string({ error: 'required: the gateway’s webhook secret' }).min(1),
  /** Where the webhooks go, e.g. http://gateway:8080/razorpay/webhook; unset: recorded only. */
  RAZORPAY_FAKE_WEBHOOK_URL: z.url().optional(),
});

async function main(): Promise<void> {
  const boot = createRootLogger({ level: 'info', name: 'razorpay-fake' });
  const parsed = RazorpayFakeEnv.safeParse(process.env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    boot.fatal({ problems }, `invalid configuration: ${problems.join('; ')}`);
    process.exit(2);
  }
  const env = parsed.data;
  const log = createRootLogger({ level: env.LOG_LEVEL, name: 'razorpay-fake' });
  const fake = await startRazorpayFake({
    keyId: env.RAZORPAY_KEY_ID,
    keySecret: env.RAZORPAY_KEY_SECRET,
    webhookSecret: env.RAZORPAY_WEBHOOK_SECRET,
    host: env.RAZORPAY_FAKE_HOST,
    port: env.RAZORPAY_FAKE_PORT,
    ...(env.RAZORPAY_FAKE_WEBHOOK_URL === undefined
      ? {}
      : { webhookUrl: env.RAZORPAY_FAKE_WEBHOOK_URL }),
  });
  log.info(
    { url: fake.url, webhookUrl: env.RAZORPAY_FAKE_WEBHOOK_URL ?? null },
    'razorpay fake listening',
  );

  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'razorpay fake stopping');
    fake.stop().then(
      () => {
        log.info('razorpay fake stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'razorpay fake did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    createRootLogger({ level: 'info', name: 'razorpay-fake' }).fatal(
      { err },
      'razorpay fake failed',
    );
    process.exit(1);
  });
}
