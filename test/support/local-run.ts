/**
 * `npm start`'s composition (deploy/local, startLocal) for a test: a private nats-server, a
 * fresh database, its own Redis key prefix, and every server on a free port. `stop` ends the
 * run and removes what it made; a test passes only what it changes (timings, secrets).
 */
import { startLocal, type LocalOptions, type LocalRun } from '../../deploy/local/index.ts';
import {
  createTestDatabase,
  redisPrefix,
  redisUrl,
  startNats,
  type NatsServerHandle,
} from '../harness/index.ts';
import { quietLog } from './runtime-env.ts';

export interface LocalTestRun {
  run: LocalRun;
  nats: NatsServerHandle;
  stop(): Promise<void>;
}

type Fixed = 'log' | 'natsUrl' | 'databaseUrl' | 'redisUrl' | 'rateLimitPrefix' | 'gatewayPort';

export async function startLocalRun(
  opts: Omit<Partial<LocalOptions>, Fixed> = {},
): Promise<LocalTestRun> {
  const nats = await startNats();
  const database = await createTestDatabase().catch(async (err: unknown) => {
    await nats.stop();
    throw err;
  });
  let run: LocalRun;
  try {
    run = await startLocal({
      ports: { arm: 0, telegram: 0, razorpay: 0, sandbox: 0 },
      ...opts,
      log: quietLog(),
      natsUrl: nats.url,
      databaseUrl: database.url,
      redisUrl: redisUrl(),
      rateLimitPrefix: redisPrefix(),
      gatewayPort: 0,
    });
  } catch (err) {
    await database.drop();
    await nats.stop();
    throw err;
  }
  return {
    run,
    nats,
    async stop() {
      await run.stop();
      await database.drop();
      await nats.stop();
    },
  };
}
