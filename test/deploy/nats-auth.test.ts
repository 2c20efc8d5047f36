/**
 * deploy/nats/auth.conf, loaded by a nats-server started from the committed
 * respawn-secure.conf: each component's user can do its work — a real worker and a real
 * gateway connected as `actors` and `gateway` carry a Telegram /start from the webhook to the
 * bot's answer in the Telegram fake — and is refused outside its permissions. What the gateway
 * and other services may publish is checked against contracts/catalog.ts, route by route.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { connect, nanos, type NatsConnection } from '@nats-io/transport-node';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Catalog,
  Components,
  DemoAdd,
  RawCatalog,
  SessionStop,
  Streams,
  ingressSubject,
  type CatalogRoute,
  type Component,
  type NatsUser,
} from '../../contracts/index.ts';
import { loadWorkerConfig } from '../../actors/config.ts';
import { runWorker, type RunningWorker } from '../../actors/main.ts';
import { loadGatewayEnv } from '../../gateway/config.ts';
import { runGateway, type RunningGateway } from '../../gateway/main.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import { startArmFake, type ArmFake } from '../../deploy/fakes/arm/index.ts';
import { armEffectsEnv } from '../agent/support.ts';
import {
  connectPostgres,
  createTestDatabase,
  redisPrefix,
  redisUrl,
  type TestDatabase,
} from '../harness/index.ts';
import { eventually, quietLog } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  RAZORPAY_SECRET,
  TELEGRAM_SECRET,
  postUpdate,
  stored,
  textUpdate,
} from '../gateway/support.ts';
import {
  TEST_NATS_PASSWORDS,
  connectAs,
  refusalsSince,
  startSecureNats,
  type SecureNats,
  type UserConnection,
} from './nats-servers.ts';

let server: SecureNats;
let database: TestDatabase;
let fake: TelegramFake;
let arm: ArmFake;
let worker: RunningWorker;
let gateway: RunningGateway;
const users = new Map<NatsUser, UserConnection>();

const as = (user: NatsUser): UserConnection => {
  const c = users.get(user);
  if (c === undefined) throw new Error(`no connection for ${user}`);
  return c;
};

beforeAll(async () => {
  server = await startSecureNats();
  database = await createTestDatabase();
  fake = await startTelegramFake({ token: BOT_TOKEN });
  arm = await startArmFake({
    subscriptionId: '00000000-0000-0000-0000-0000000000a7',
    resourceGroup: 'respawn-auth',
    location: 'centralindia',
    quotas: { lowPriorityCores: 8, standardNCASv3_T4Family: 8, cores: 100 },
    lroPolls: 1,
  });
  worker = await runWorker(
    loadWorkerConfig({
      NATS_URL: server.url,
      NATS_USER: 'actors',
      NATS_PASSWORD: TEST_NATS_PASSWORDS.actors,
      DATABASE_URL: database.url,
      RESPAWN_ACTORS: 'session,billing,alloc,demo',
      RESPAWN_INGRESS: 'telegram,agent,razorpay',
      RESPAWN_HTTP_PORT: '0',
      // The Azure effects runner too: it takes its region's lease (a KV bucket of its own).
      ...armEffectsEnv(arm, 'centralindia'),
    }),
    quietLog(),
  );
  gateway = await runGateway(
    loadGatewayEnv({
      NATS_URL: server.url,
      NATS_USER: 'gateway',
      NATS_PASSWORD: TEST_NATS_PASSWORDS.gateway,
      GATEWAY_ENSURE_STREAMS: 'false',
      REDIS_URL: redisUrl(),
      RATE_LIMIT_PREFIX: redisPrefix(),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: '0',
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_API_ROOT: fake.url,
      TELEGRAM_WEBHOOK_SECRET: TELEGRAM_SECRET,
      TELEGRAM_PER_CHAT_INTERVAL_MS: '0',
      RAZORPAY_WEBHOOK_SECRET: RAZORPAY_SECRET,
    }),
    pino({ level: 'silent' }),
    {
      // The Razorpay effects runner's consumer is created; no call is made in this test.
      razorpayApi: {
        keyId: 'rzp_test_auth',
        keySecret: 'not-used-in-this-test',
        baseUrl: 'http://127.0.0.1:9',
        timeoutMs: 1_000,
        maxAttempts: 1,
      },
    },
  );
  for (const u of ['gateway', 'actors', 'operator', 'services'] as const) {
    users.set(u, await connectAs(server.url, u));
  }
}, 60_000);

afterAll(async () => {
  for (const c of users.values()) await c.nc.close();
  await gateway?.stop();
  await worker?.stop();
  await fake?.stop();
  await arm?.stop();
  await database?.drop();
  await server?.stop();
});

const escape = (s: string): string => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** Publishes with core NATS and tells whether the server refused it (the mapped form too). */
async function publishRefused(c: UserConnection, subject: string): Promise<boolean> {
  const from = c.violations.length;
  c.nc.publish(subject, '{}');
  const re = new RegExp(`Publish to "${escape(subject)}(\\.\\d+)?"`);
  return (await refusalsSince(c, from)).some((v) => re.test(v));
}

async function subscribeRefused(c: UserConnection, subject: string): Promise<boolean> {
  const from = c.violations.length;
  const sub = c.nc.subscribe(subject, { callback: () => undefined });
  const refused = (await refusalsSince(c, from)).some((v) =>
    v.includes(`Subscription to "${subject}"`),
  );
  sub.unsubscribe();
  return refused;
}

/** A JetStream API request: resolves 'refused' on a permissions violation. */
async function api(nc: NatsConnection, subject: string, body: unknown = {}): Promise<string> {
  try {
    const m = await nc.request(subject, JSON.stringify(body), { timeout: 2_000 });
    return m.string();
  } catch (err) {
    if (err instanceof Error && /permissions violation/i.test(err.message)) return 'refused';
    throw err;
  }
}

/** A concrete subject of a catalog channel (`{playerId}` → 42, enums → their first value). */
function subjectOf(route: CatalogRoute): string {
  return route.channel.replace(/\{(\w+)\}/g, (_, p: string) => route.enums?.[p]?.[0] ?? '42');
}

const routes: CatalogRoute[] = [
  ...Catalog.flatMap((e) => e.routes),
  ...RawCatalog.map((e) => e.route),
];

function publishedBy(components: readonly Component[]): (r: CatalogRoute) => boolean {
  return (r) => r.publishers.some((p) => components.includes(p));
}

const run = promisify(execFile);

describe('NATS users (deploy/nats/auth.conf)', () => {
  it('refuses a client without credentials, with a wrong password, or an unknown user', async () => {
    await expect(connect({ servers: server.url })).rejects.toThrow(/Authorization Violation/);
    await expect(
      connect({ servers: server.url, user: 'gateway', pass: TEST_NATS_PASSWORDS.actors }),
    ).rejects.toThrow(/Authorization Violation/);
    await expect(
      connect({ servers: server.url, user: 'admin', pass: TEST_NATS_PASSWORDS.actors }),
    ).rejects.toThrow(/Authorization Violation/);
  });

  it('actors and gateway do their work: a /start webhook is answered in Telegram', async () => {
    const ops = await jetstreamManager(as('operator').nc);
    // The worker (actors) converged every stream and its consumers; the gateway made its own.
    const streams = (await ops.streams.names().next()).sort();
    expect(streams).toEqual(
      expect.arrayContaining([
        Streams.ingress.name,
        Streams.events.name,
        Streams.out.name,
        Streams.dlq.name,
        'RESPAWN_SESSION_CMD',
        'RESPAWN_BILLING_CMD',
        'RESPAWN_ALLOC_CMD',
        'RESPAWN_DEMO_CMD',
        'KV_respawn_tg_messages',
        'KV_respawn_tg_sender',
      ]),
    );
    expect((await ops.consumers.list('RESPAWN_SESSION_CMD').next()).length).toBe(64);
    // The gateway took the Telegram sender lease (KV), the worker its region's Azure effects
    // lease (PostgreSQL).
    const sender = await ops.streams.getMessage('KV_respawn_tg_sender', {
      last_by_subj: '$KV.respawn_tg_sender.holder',
    });
    expect(sender?.json<{ holder: string }>().holder).toMatch(/\/\d+$/);
    const pg = await connectPostgres(database.url);
    try {
      const { rows } = await pg.query(
        `select owner from rt_lease where name = 'role.azure-effects.centralindia' and expires_at > now()`,
      );
      expect(rows.map((r) => r.owner)).toEqual([expect.stringMatching(/\/\d+#[0-9a-f]{8}$/)]);
    } finally {
      await pg.end();
    }
    const outConsumers = (await ops.consumers.list(Streams.out.name).next()).map((c) => c.name);
    expect(outConsumers).toEqual(
      expect.arrayContaining(['gateway-telegram-out', 'gateway-razorpay']),
    );

    const url = gateway.url;
    expect((await postUpdate(url, textUpdate(5101, 777, '/start'))).status).toBe(200);
    const inbound = await stored(ops, Streams.ingress.name, ingressSubject('telegram'));
    expect(inbound.map((m) => m.headers['Nats-Msg-Id'])).toContain('tg-5101');
    // The ingress router (actors) answered on respawn.out.telegram.777; the gateway sent it
    // and recorded the send in its KV bucket.
    await eventually('the bot answers /start', () => Promise.resolve(fake.sent(777).length > 0));
    await eventually('the send is recorded in respawn_tg_messages', async () => {
      const info = await ops.streams.info('KV_respawn_tg_messages');
      return info.state.messages > 0;
    });
    // Nothing either component did on the way was refused (a refused ack or pull would only
    // show as a stall).
    expect((await server.log()).split('\n').filter((l) => /Violation/.test(l))).toEqual([]);
  });

  it('actors may bring their Azure effects consumer’s ack_wait in line (an older release’s)', async () => {
    // actors/allocator/effects.ts updates an existing consumer whose ack_wait differs.
    const jsm = await jetstreamManager(as('actors').nc);
    const name = 'azure-centralindia';
    const ackWait = async () => (await jsm.consumers.info(Streams.out.name, name)).config.ack_wait;
    expect(await ackWait()).toBe(nanos(20_000));
    await jsm.consumers.update(Streams.out.name, name, { ack_wait: nanos(60_000) });
    expect(await ackWait()).toBe(nanos(60_000));
    await jsm.consumers.update(Streams.out.name, name, { ack_wait: nanos(20_000) });
    expect(await ackWait()).toBe(nanos(20_000));
    expect((await server.log()).split('\n').filter((l) => /Violation/.test(l))).toEqual([]);
  });

  it('actors handle a command another service published, and emit its event', async () => {
    const js = jetstream(as('services').nc);
    const ack = await js.publish(
      'respawn.demo.auth-1.cmd.add',
      DemoAdd.encode({ n: 1, amount: 5 }),
      {
        msgID: 'auth-demo-1',
      },
    );
    expect(ack.stream).toBe('RESPAWN_DEMO_CMD');
    await eventually('the demo actor applied it', async () => {
      const pg = await connectPostgres(database.url);
      try {
        const r = await pg.query(
          "select version from rt_state where actor = 'demo' and key = 'auth-1'",
        );
        return (r.rows as { version: number }[])[0]?.version === 1;
      } finally {
        await pg.end();
      }
    });
  });

  it('the gateway may publish exactly what the catalog says the gateway publishes', async () => {
    const gw = as('gateway');
    const mine = publishedBy([
      Components.gateway,
      Components.razorpayEffects,
      Components.telegramSender,
    ]);
    const allowed = routes.filter(mine);
    const refused = routes.filter((r) => !mine(r));
    expect(allowed.length).toBeGreaterThanOrEqual(6);
    for (const r of allowed) expect(await publishRefused(gw, subjectOf(r)), r.channel).toBe(false);
    for (const r of refused) expect(await publishRefused(gw, subjectOf(r)), r.channel).toBe(true);
    // Its own dead letters only.
    expect(await publishRefused(gw, 'respawn.dlq.gateway.invalid_payload')).toBe(false);
    expect(await publishRefused(gw, 'respawn.dlq.session.invalid_payload')).toBe(true);
  });

  it('the gateway cannot publish commands directly, read streams, or change them', async () => {
    const gw = as('gateway');
    for (const s of [
      'respawn.session.42.cmd.start',
      'respawn.session.42.cmd.stop.7',
      'respawn.billing.42.cmd.topup',
      'respawn.billing.42.cmd.adjust',
      'respawn.session.42.evt.ready',
      'respawn.out.telegram.42',
    ]) {
      expect(await publishRefused(gw, s), s).toBe(true);
    }
    for (const s of ['respawn.>', '_INBOX.>', '_INBOX_actors.>', 'respawn.in.telegram']) {
      expect(await subscribeRefused(gw, s), s).toBe(true);
    }
    expect(await api(gw.nc, '$JS.API.STREAM.DELETE.RESPAWN_IN')).toBe('refused');
    expect(await api(gw.nc, '$JS.API.STREAM.UPDATE.RESPAWN_OUT')).toBe('refused');
    expect(await api(gw.nc, '$JS.API.STREAM.PURGE.RESPAWN_OUT')).toBe('refused');
    expect(await api(gw.nc, '$JS.API.STREAM.MSG.GET.RESPAWN_IN', { seq: 1 })).toBe('refused');
    expect(await api(gw.nc, '$JS.API.CONSUMER.INFO.RESPAWN_SESSION_CMD.session-p00')).toBe(
      'refused',
    );
    expect(await api(gw.nc, '$JS.API.CONSUMER.CREATE.RESPAWN_EVT')).toBe('refused');
    expect(
      await api(gw.nc, '$JS.API.CONSUMER.MSG.NEXT.RESPAWN_SESSION_CMD.session-p00', { batch: 1 }),
    ).toBe('refused');
  });

  it('other services may publish exactly the commands the catalog lists them for', async () => {
    const svc = as('services');
    const mine = publishedBy([Components.otherServices]);
    const allowed = routes.filter(mine);
    expect(allowed.map((r) => r.channel)).toEqual(
      expect.arrayContaining([
        'respawn.session.{playerId}.cmd.stop',
        'respawn.billing.{playerId}.cmd.adjust',
      ]),
    );
    for (const r of allowed) expect(await publishRefused(svc, subjectOf(r)), r.channel).toBe(false);
    for (const r of routes.filter((x) => !mine(x))) {
      expect(await publishRefused(svc, subjectOf(r)), r.channel).toBe(true);
    }
  });

  it('other services get a JetStream ack for a stop, and watch session events only', async () => {
    const svc = as('services');
    const ack = await jetstream(svc.nc).publish(
      'respawn.session.42.cmd.stop',
      SessionStop.encode({ requestedBy: 'operator', reason: 'operator', note: 'auth test' }),
      { msgID: 'auth-stop-42' },
    );
    expect(ack.stream).toBe('RESPAWN_SESSION_CMD');
    expect(await subscribeRefused(svc, 'respawn.session.42.evt.*')).toBe(false);
    for (const s of [
      'respawn.session.42.>',
      'respawn.billing.42.evt.*',
      'respawn.out.telegram.42',
      '_INBOX.>',
      '_INBOX_operator.>',
    ]) {
      expect(await subscribeRefused(svc, s), s).toBe(true);
    }
  });

  it('other services cannot read streams or publish events, ingress or effects', async () => {
    const svc = as('services');
    await expect(jetstreamManager(svc.nc)).rejects.toThrow(/Permissions Violation/);
    expect(await api(svc.nc, '$JS.API.STREAM.MSG.GET.RESPAWN_SESSION_CMD', { seq: 1 })).toBe(
      'refused',
    );
    expect(await api(svc.nc, '$JS.API.DIRECT.GET.KV_respawn_tg_messages', { seq: 1 })).toBe(
      'refused',
    );
    expect(await api(svc.nc, '$JS.API.CONSUMER.CREATE.RESPAWN_EVT')).toBe('refused');
    for (const s of [
      'respawn.session.42.evt.ready',
      'respawn.in.telegram',
      'respawn.out.telegram.42',
      'respawn.dlq.session.invalid_payload',
      'respawn.billing.42.cmd.topup',
      '$KV.respawn_tg_messages.sent.x',
    ]) {
      expect(await publishRefused(svc, s), s).toBe(true);
    }
  });

  it('a client using the shared _INBOX prefix gets no replies (each user has its own)', async () => {
    const svc = await connectAs(server.url, 'services', { inboxPrefix: '_INBOX' });
    try {
      await expect(
        jetstream(svc.nc).publish('respawn.session.43.cmd.stop', '{}', { timeout: 2_000 }),
      ).rejects.toThrow(/Permissions Violation/);
    } finally {
      await svc.nc.close();
    }
  });

  it('operators read streams, consumers and live traffic', async () => {
    const op = as('operator');
    const jsm = await jetstreamManager(op.nc);
    expect((await jsm.streams.info(Streams.ingress.name)).state.messages).toBeGreaterThan(0);
    expect((await jsm.consumers.info('RESPAWN_SESSION_CMD', 'session-p00')).name).toBe(
      'session-p00',
    );
    const first = await jsm.streams.getMessage(Streams.ingress.name, { seq: 1 });
    expect(first?.subject).toMatch(/^respawn\.in\./);

    const seen: string[] = [];
    const sub = op.nc.subscribe('respawn.session.44.>', {
      callback: (_, m) => {
        seen.push(m.subject);
      },
    });
    await op.nc.flush();
    expect(await publishRefused(as('services'), 'respawn.session.44.cmd.status')).toBe(false);
    await eventually('the operator sees the command live', () =>
      Promise.resolve(seen.some((s) => s.startsWith('respawn.session.44.cmd.status'))),
    );
    sub.unsubscribe();
  });

  it('the dead-letter tool lists as the operator user, and says what is missing without one', async () => {
    const { NATS_USER: _u, NATS_PASSWORD: _p, ...base } = process.env;
    const dlq = (env: Record<string, string>) =>
      run(process.execPath, ['--import', 'tsx', 'deploy/dlq.ts', 'list', '--limit', '5'], {
        env: { ...base, NATS_URL: server.url, ...env },
      }).catch((e: { code: number; stdout: string; stderr: string }) => e);
    const listed = await dlq({
      NATS_USER: 'operator',
      NATS_PASSWORD: TEST_NATS_PASSWORDS.operator,
    });
    expect('code' in listed ? listed.stderr : '').toBe('');
    expect(listed.stdout).toMatch(/\d+ dead letter\(s\)/);
    const anonymous = await dlq({});
    expect('code' in anonymous ? anonymous.code : 0).toBe(1);
    expect(anonymous.stderr).toMatch(/Authorization Violation/i);
  });

  it('operators cannot publish, delete, purge, update or create consumers', async () => {
    const op = as('operator');
    for (const s of ['respawn.session.42.cmd.stop', 'respawn.in.telegram', 'respawn.dlq.x.y']) {
      expect(await publishRefused(op, s), s).toBe(true);
    }
    for (const s of [
      '$JS.API.STREAM.DELETE.RESPAWN_EVT',
      '$JS.API.STREAM.PURGE.RESPAWN_EVT',
      '$JS.API.STREAM.UPDATE.RESPAWN_EVT',
      '$JS.API.STREAM.MSG.DELETE.RESPAWN_EVT',
      '$JS.API.CONSUMER.DELETE.RESPAWN_SESSION_CMD.session-p00',
      '$JS.API.CONSUMER.CREATE.RESPAWN_EVT',
      '$JS.API.CONSUMER.DURABLE.CREATE.RESPAWN_EVT.mine',
      '$JS.API.CONSUMER.MSG.NEXT.RESPAWN_SESSION_CMD.session-p00',
    ]) {
      expect(await api(op.nc, s), s).toBe('refused');
    }
    expect(await subscribeRefused(op, '_INBOX_gateway.>')).toBe(true);
    // Nothing was changed by the attempts.
    const jsm = await jetstreamManager(op.nc);
    expect((await jsm.consumers.info('RESPAWN_SESSION_CMD', 'session-p00')).name).toBe(
      'session-p00',
    );
    expect((await jsm.streams.info(Streams.events.name)).config.name).toBe('RESPAWN_EVT');
  });

  it('actors cannot forge ingress, touch the gateway KV, delete, or read others’ replies', async () => {
    const act = as('actors');
    for (const s of ['respawn.in.telegram', '$KV.respawn_tg_messages.sent.x']) {
      expect(await publishRefused(act, s), s).toBe(true);
    }
    for (const s of ['respawn.>', '_INBOX_gateway.>', '_INBOX.>']) {
      expect(await subscribeRefused(act, s), s).toBe(true);
    }
    expect(await api(act.nc, '$JS.API.STREAM.DELETE.RESPAWN_EVT')).toBe('refused');
    expect(await api(act.nc, '$JS.API.STREAM.PURGE.RESPAWN_SESSION_CMD')).toBe('refused');
    expect(await api(act.nc, '$JS.API.CONSUMER.DELETE.RESPAWN_SESSION_CMD.session-p00')).toBe(
      'refused',
    );
    expect(await api(act.nc, '$JS.API.STREAM.MSG.GET.KV_respawn_tg_messages', { seq: 1 })).toBe(
      'refused',
    );
  });
});
