/**
 * What billing's real-service tests share: a private nats-server, a fresh database with the
 * runtime's and billing's tables, an in-process worker hosting the billing actor on a given
 * clock, a stand-in for the gateway's webhook route (signature check on the raw body, then the
 * body published unchanged to `respawn.in.razorpay`), and readers for what billing wrote.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHmac, timingSafeEqual } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { expect } from 'vitest';
import {
  ActorKinds,
  Streams,
  cmdSubject,
  ensureTopology,
  ingressSubject,
  type MessageDef,
} from '../../contracts/index.ts';
import {
  billingMigrations,
  createBillingActor,
  type BillingConfig,
  type BillingState,
} from '../../actors/billing/index.ts';
import {
  createWorker,
  migrate,
  openDatabase,
  type ActorDefinition,
  type Clock,
  type Database,
  type Worker,
} from '../../actors/runtime/index.ts';
import {
  createTestDatabase,
  startNats,
  type NatsServerHandle,
  type TestDatabase,
} from '../harness/index.ts';
import { quietLog, streamMessages } from '../support/runtime-env.ts';

export interface BillingEnv {
  nats: NatsServerHandle;
  database: TestDatabase;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  db: Database;
  dispose(): Promise<void>;
}

export async function startBillingEnv(): Promise<BillingEnv> {
  const nats = await startNats();
  const database = await createTestDatabase();
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1 });
  const jsm = await jetstreamManager(nc);
  await ensureTopology(jsm, { consumersFor: [ActorKinds.billing] });
  const db = await openDatabase({
    url: database.url,
    log: quietLog(),
    migrations: billingMigrations,
  });
  await migrate(db);
  return {
    nats,
    database,
    nc,
    js: jetstream(nc),
    jsm,
    db,
    async dispose() {
      await nc.close();
      await db.close();
      await database.drop();
      await nats.stop();
    },
  };
}

export async function startBillingWorker(
  env: BillingEnv,
  clock: Clock,
  config: Partial<BillingConfig> = {},
): Promise<Worker> {
  const w = createWorker({
    nc: env.nc,
    db: env.db,
    log: quietLog(),
    clock,
    actors: [createBillingActor(config) as unknown as ActorDefinition],
    timerPollMs: 100,
    backoff: { baseMs: 50, maxMs: 500 },
  });
  await w.start();
  return w;
}

/** Publishes a command to a player's billing actor, as another service would. */
export async function toBilling<T extends string, P>(
  env: BillingEnv,
  player: string,
  verb: string,
  def: MessageDef<T, P>,
  value: P,
  msgId: string,
): Promise<void> {
  await env.js.publish(cmdSubject(ActorKinds.billing, player, verb), def.encode(value), {
    msgID: msgId,
  });
}

export interface LedgerRow {
  player_id: string;
  idempotency_key: string;
  amount_paise: number;
  reason: string;
  payment_id: string | null;
  session_id: string | null;
}

export async function ledger(db: Database, player?: string): Promise<LedgerRow[]> {
  const q = db
    .knex('billing_ledger')
    .select('player_id', 'idempotency_key', 'amount_paise', 'reason', 'payment_id', 'session_id')
    .orderBy('id');
  const rows = (await (player === undefined ? q : q.where({ player_id: player }))) as (Omit<
    LedgerRow,
    'amount_paise'
  > & { amount_paise: string })[];
  // bigint comes back as text.
  return rows.map((r) => ({ ...r, amount_paise: Number(r.amount_paise) }));
}

export async function billingState(
  db: Database,
  player: string,
): Promise<BillingState | undefined> {
  const row = (await db
    .knex('rt_state')
    .first('state')
    .where({ actor: 'billing', key: player })) as { state: BillingState } | undefined;
  return row?.state;
}

/** The invariant: every player's cached balance equals the sum of their ledger entries. */
export async function expectBalancesMatchLedger(db: Database): Promise<number> {
  const states = (await db.knex('rt_state').select('key', 'state').where({ actor: 'billing' })) as {
    key: string;
    state: BillingState;
  }[];
  // bigint sums come back as text.
  const sums: { player_id: string; total: string }[] = await db
    .knex('billing_ledger')
    .select('player_id')
    .sum({ total: 'amount_paise' })
    .groupBy('player_id');
  const ledgerBy = new Map(sums.map((s) => [s.player_id, Number(s.total)]));
  for (const p of ledgerBy.keys()) expect(states.map((s) => s.key)).toContain(p);
  for (const s of states) {
    expect({ player: s.key, balance: s.state.balancePaise }).toEqual({
      player: s.key,
      balance: ledgerBy.get(s.key) ?? 0,
    });
  }
  return states.length;
}

/** Decoded messages of a kind stored on a stream under a subject prefix. */
export async function stored<T extends string, P>(
  env: BillingEnv,
  stream: string,
  prefix: string,
  def: MessageDef<T, P>,
): Promise<(P & { type: T })[]> {
  const all = await streamMessages(env.jsm, stream, prefix);
  // Other kinds on the same subjects fail the definition's `type` check and are skipped.
  return all.flatMap((m) => {
    try {
      return [def.decode(m.data)];
    } catch {
      return [];
    }
  });
}

export const telegramTo = (chatId: string) => `respawn.out.telegram.${chatId}`;
export const OUT = Streams.out.name;

export interface WebhookReceiver {
  readonly url: string;
  readonly refused: number;
  stop(): Promise<void>;
}

/**
 * A stand-in for the gateway's `POST /razorpay/webhook` (not billing's code): HMAC-SHA256 of
 * the raw body in constant time, then the raw bytes to RESPAWN_IN with `rzp-<event id>`,
 * answered 200 once JetStream has them.
 */
export async function startWebhookReceiver(
  env: BillingEnv,
  secret: string,
): Promise<WebhookReceiver> {
  let refused = 0;
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      const want = Buffer.from(createHmac('sha256', secret).update(body).digest('hex'));
      const got = Buffer.from(String(req.headers['x-razorpay-signature'] ?? ''));
      const eventId = String(req.headers['x-razorpay-event-id'] ?? '');
      if (got.length !== want.length || !timingSafeEqual(got, want) || eventId === '') {
        refused++;
        res.writeHead(401).end();
        return;
      }
      env.js
        .publish(ingressSubject('razorpay'), body, { msgID: `rzp-${eventId}` })
        .then(() => res.writeHead(200).end('{"ok":true}'))
        .catch(() => res.writeHead(503).end());
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/razorpay/webhook`,
    get refused() {
      return refused;
    },
    stop: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** The real worker entry (`actors/main.ts`) hosting billing, in its own process. */
export function spawnBillingWorker(env: BillingEnv, clockOffsetMs: number): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', 'actors/main.ts'], {
    env: {
      ...process.env,
      NATS_URL: env.nats.url,
      DATABASE_URL: env.database.url,
      RESPAWN_ACTORS: 'billing',
      RESPAWN_MIGRATE: 'false',
      RESPAWN_CLOCK_OFFSET_MS: String(clockOffsetMs),
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
}

export function exited(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => child.once('exit', () => resolve()));
}
