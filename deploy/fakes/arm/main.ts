/**
 * Runs the fake ARM on its own, for `npm start` without Azure credentials:
 *   node --import tsx deploy/fakes/arm/main.ts
 * Logs (pino JSON) its URL and the path of the CA certificate to trust; SIGTERM or SIGINT
 * stops it.
 */
import { z } from 'zod';
import { createRootLogger } from '../../../actors/log.ts';
import { startArmFake } from './server.ts';

/** Its environment, validated at start (exported for the compose test). */
export const ArmFakeEnv = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  ARM_FAKE_HOST: z.string().default('127.0.0.1'),
  ARM_FAKE_PORT: z.coerce.number().int().min(0).max(65535).default(4443),
  ARM_FAKE_SUBSCRIPTION: z.string().min(1).default('00000000-0000-0000-0000-000000000000'),
  ARM_FAKE_RESOURCE_GROUP: z.string().min(1).default('respawn'),
  ARM_FAKE_LOCATION: z.string().min(1).default('centralindia'),
  ARM_FAKE_SEED: z.coerce.number().int().default(1),
  ARM_FAKE_LRO_POLLS: z.coerce.number().int().min(0).default(2),
  ARM_FAKE_LRO_LATENCY_MS: z.coerce.number().int().min(0).default(3_000),
  /** JSON object of usage limits, e.g. {"lowPriorityCores":40,"standardNCASv3_T4Family":16}. */
  ARM_FAKE_QUOTAS: z.string().optional(),
});

const QuotaJson = z.record(z.string(), z.number().int().min(0));

async function main(): Promise<void> {
  const boot = createRootLogger({ level: 'info', name: 'arm-fake' });
  const parsed = ArmFakeEnv.safeParse(process.env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
    boot.fatal({ problems }, `invalid configuration: ${problems.join('; ')}`);
    process.exit(2);
  }
  const env = parsed.data;
  const log = createRootLogger({ level: env.LOG_LEVEL, name: 'arm-fake' });
  let quotas: Record<string, number> | undefined;
  if (env.ARM_FAKE_QUOTAS !== undefined) {
    let json: unknown;
    try {
      json = JSON.parse(env.ARM_FAKE_QUOTAS);
    } catch {
      json = null;
    }
    const q = QuotaJson.safeParse(json);
    if (!q.success) {
      boot.fatal('invalid configuration: ARM_FAKE_QUOTAS must be a JSON object of integers');
      process.exit(2);
    }
    quotas = q.data;
  }
  const fake = await startArmFake({
    subscriptionId: env.ARM_FAKE_SUBSCRIPTION,
    resourceGroup: env.ARM_FAKE_RESOURCE_GROUP,
    location: env.ARM_FAKE_LOCATION,
    seed: env.ARM_FAKE_SEED,
    lroPolls: env.ARM_FAKE_LRO_POLLS,
    lroLatencyMs: env.ARM_FAKE_LRO_LATENCY_MS,
    host: env.ARM_FAKE_HOST,
    port: env.ARM_FAKE_PORT,
    ...(quotas === undefined ? {} : { quotas }),
  });
  log.info({ url: fake.url, caCertPath: fake.caCertPath }, 'arm fake listening');
  let stopping = false;
  const stop = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'arm fake stopping');
    fake.stop().then(
      () => {
        log.info('arm fake stopped');
        process.exit(0);
      },
      (err: unknown) => {
        log.error({ err }, 'arm fake did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    createRootLogger({ level: 'info', name: 'arm-fake' }).fatal({ err }, 'arm fake failed');
    process.exit(1);
  });
}
