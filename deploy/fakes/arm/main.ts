/**
 * Runs the fake ARM on its own, for `npm start` without Azure credentials:
 *   node --import tsx deploy/fakes/arm/main.ts
 * Prints one JSON line with its URL and certificate path; Ctrl-C stops it.
 */
import { z } from 'zod';
import { startArmFake } from './server.ts';

const Env = z.object({
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
  const parsed = Env.safeParse(process.env);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    console.error(
      `invalid configuration: ${issue?.path.join('.') ?? '?'}: ${issue?.message ?? ''}`,
    );
    process.exit(2);
  }
  const env = parsed.data;
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
      console.error('invalid configuration: ARM_FAKE_QUOTAS must be a JSON object of integers');
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
  console.log(
    JSON.stringify({ msg: 'arm fake listening', url: fake.url, caCertPath: fake.caCertPath }),
  );
  const stop = (): void => {
    fake.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}

void main();
