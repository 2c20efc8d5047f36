/**
 * The ingress routers against a private nats-server configured like production: what the
 * gateway stores on `respawn.in.*` becomes each actor command once, garbage is dead-lettered
 * with its reason, and nothing stops the flow.
 */
import {
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import { connect, headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import { Registry } from 'prom-client';
import { deadLetterCounter } from '../../actors/runtime/metrics.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  AgentReport,
  ActorKinds,
  HeaderNames,
  SessionAgentReady,
  SessionStart,
  Streams,
  TelegramSend,
  cmdSubject,
  commandStreamName,
  ensureTopology,
  ingressConsumerName,
  ingressSubject,
  type IngressSource,
} from '../../contracts/index.ts';
import {
  createAgentIngress,
  createIngressRouter,
  createTelegramIngress,
  type IngressRouter,
} from '../../actors/ingress/index.ts';
import { startNats, type NatsServerHandle } from '../harness/index.ts';
import { eventually, quietLog, streamMessages } from '../support/runtime-env.ts';

const enc = new TextEncoder();
const body = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

let nats: NatsServerHandle;
let nc: NatsConnection;
let js: JetStreamClient;
let jsm: JetStreamManager;
const log = quietLog();

beforeAll(async () => {
  nats = await startNats();
  nc = await connect({ servers: nats.url });
  js = jetstream(nc);
  jsm = await jetstreamManager(nc);
  await ensureTopology(jsm, { consumersFor: [] });
});

afterAll(async () => {
  await nc?.close();
  await nats?.stop();
});

async function publishIngress(
  source: IngressSource,
  data: Uint8Array,
  msgId?: string,
): Promise<void> {
  const h = natsHeaders();
  h.set(HeaderNames.traceparent, '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01');
  await js.publish(ingressSubject(source), data, {
    headers: h,
    ...(msgId === undefined ? {} : { msgID: msgId }),
  });
}

const ready = (id: string, playerId: string) =>
  body({
    type: 'agent.report.v1',
    id,
    vmName: `vm-${playerId}-1-a1-spotnc4`,
    sessionId: `${playerId}-1`,
    playerId,
    kind: 'ready',
    at: '2026-01-01T00:00:00.000Z',
    host: '20.1.2.3',
    port: 47989,
    pin: '1234',
  });

/** Every ingress message the router's consumer was given has been settled. */
async function drained(durable: string): Promise<void> {
  await eventually(`${durable} settles everything`, async () => {
    const ci = await jsm.consumers.info(Streams.ingress.name, durable);
    return ci.num_pending === 0 && ci.num_ack_pending === 0;
  });
}

const stored = (kind: 'session' | 'billing', prefix: string) =>
  streamMessages(jsm, commandStreamName(ActorKinds[kind]), prefix);

describe('the agent ingress router', () => {
  let router: IngressRouter;
  const durable = ingressConsumerName('agent');
  const registry = new Registry();

  beforeAll(async () => {
    router = createAgentIngress({
      nc,
      log,
      retryDelayMs: 50,
      deadLetters: deadLetterCounter(registry),
    });
    await router.start();
  });
  afterAll(async () => {
    await router?.stop();
  });

  it('turns a ready report into one session.agent_ready even when it is stored 3 times', async () => {
    // Stored three times without the gateway's id, as if JetStream's window had passed.
    for (let i = 0; i < 3; i++) await publishIngress('agent', ready('r1', 'a1'));
    await drained(durable);
    const cmds = await stored('session', 'respawn.session.a1.cmd.agent_ready');
    expect(cmds).toHaveLength(1);
    const [c] = cmds;
    expect(SessionAgentReady.decode(c!.data)).toMatchObject({ host: '20.1.2.3', pin: '1234' });
    expect(c!.headers[HeaderNames.msgId]).toBe('agent-r1');
    expect(c!.headers[HeaderNames.traceparent]).toMatch(/^00-0af7/);
  });

  it('dead-letters garbage with its reason and original body, then keeps routing', async () => {
    const garbage = enc.encode('{"type":"agent.report.v1","id":');
    await publishIngress('agent', garbage, 'agent-garbage-1');
    await publishIngress('agent', ready('r2', 'a2'), 'agent-r2');
    await eventually('the later report is routed', async () => {
      return (await stored('session', 'respawn.session.a2.cmd.agent_ready')).length === 1;
    });
    const dead = await streamMessages(jsm, Streams.dlq.name, 'respawn.dlq.agent.');
    expect(dead).toHaveLength(1);
    const [d] = dead;
    expect(d!.subject).toBe('respawn.dlq.agent.invalid_json');
    expect(Buffer.from(d!.data).equals(Buffer.from(garbage))).toBe(true);
    expect(d!.headers[HeaderNames.dlqReason]).toContain('not UTF-8 JSON');
    expect(d!.headers[HeaderNames.dlqMsgId]).toBe('agent-garbage-1');
    expect(d!.headers[HeaderNames.dlqActor]).toBe('ingress-agent');
    // Counted with the actors' dead letters, so one panel shows them all.
    const counted = await registry.getSingleMetric('respawn_actor_dead_letters_total')!.get();
    expect(counted.values).toEqual([
      expect.objectContaining({
        labels: { actor: 'ingress-agent', code: 'invalid_json' },
        value: 1,
      }),
    ]);
    await drained(durable);
  });

  it('resumes from its durable consumer after a stop: nothing stored meanwhile is lost', async () => {
    await router.stop();
    await publishIngress('agent', ready('r3', 'a3'), 'agent-r3');
    router = createAgentIngress({ nc, log });
    await router.start();
    await eventually('the report stored while stopped is routed', async () => {
      return (await stored('session', 'respawn.session.a3.cmd.agent_ready')).length === 1;
    });
  });
});

describe('the generic router on a failing route', () => {
  it('retries a message whose route failed (not terminally) and routes it once when it works', async () => {
    let failures = 0;
    const router = createIngressRouter({
      nc,
      log,
      source: 'agent',
      durable: 'test-flaky-agent',
      retryDelayMs: 20,
      route: (data, ctx) => {
        // A fresh durable starts at the stream's beginning: only this test's input counts.
        if (ctx.msgId !== 'agent-flaky') return [];
        if (failures < 2) {
          failures += 1;
          throw new Error('a dependency hiccup');
        }
        const r = AgentReport.decode(data);
        return [
          {
            subject: cmdSubject(ActorKinds.session, r.playerId, 'start'),
            msgId: `flaky-${r.id}`,
            data: SessionStart.encode({ requestedBy: 'system' }),
          },
        ];
      },
    });
    await router.start();
    try {
      await publishIngress('agent', ready('flaky', 'f1'), 'agent-flaky');
      await eventually('the flaky route succeeds', async () => {
        return (await stored('session', 'respawn.session.f1.cmd.start')).length === 1;
      });
      await drained('test-flaky-agent');
      expect(failures).toBe(2);
      expect(await stored('session', 'respawn.session.f1.cmd.start')).toHaveLength(1);
    } finally {
      await router.stop();
    }
  });
});

describe('the Telegram ingress router (the bot)', () => {
  let router: IngressRouter;
  const durable = ingressConsumerName('telegram');
  const player = 424_242;

  beforeAll(async () => {
    router = createTelegramIngress({ nc, log, retryDelayMs: 50 });
    await router.start();
  });
  afterAll(async () => {
    await router?.stop();
  });

  const update = (updateId: number, text: string) => ({
    update_id: updateId,
    message: {
      message_id: updateId,
      from: { id: player, is_bot: false, first_name: 'Ravi' },
      chat: { id: player, type: 'private', first_name: 'Ravi' },
      date: 1_700_000_000,
      text,
      entities: [{ offset: 0, length: text.length, type: 'bot_command' }],
    },
  });

  it('turns /play into exactly one session.start.v1 even when the update is published 3 times', async () => {
    const play = body(update(9001, '/play'));
    // As the gateway publishes (tg-<update_id>), and twice more after JetStream's window.
    for (let i = 0; i < 3; i++) await publishIngress('telegram', play, 'tg-9001');
    await publishIngress('telegram', play, 'tg-9001-restored-a');
    await publishIngress('telegram', play, 'tg-9001-restored-b');
    await drained(durable);
    const starts = await stored('session', `respawn.session.${player}.cmd.start`);
    expect(starts).toHaveLength(1);
    expect(SessionStart.decode(starts[0]!.data)).toEqual({
      type: 'session.start.v1',
      requestedBy: 'player',
      inputSeq: 9001,
      chatId: String(player),
    });
    expect(starts[0]!.headers[HeaderNames.type]).toBe('session.start.v1');
    expect(starts[0]!.headers[HeaderNames.causationId]).toBe('tg-9001');
  });

  it('answers /start with the menu on the chat’s out subject', async () => {
    await publishIngress('telegram', body(update(9002, '/start')), 'tg-9002');
    let sends: Awaited<ReturnType<typeof streamMessages>> = [];
    await eventually('the menu is sent', async () => {
      sends = await streamMessages(jsm, Streams.out.name, `respawn.out.telegram.${player}`);
      return sends.length === 1;
    });
    const menu = TelegramSend.decode(sends[0]!.data);
    expect(menu.chatId).toBe(String(player));
    expect(menu.buttons?.flat().map((b) => b.text)).toEqual([
      '▶️ Play',
      '⏹ Stop',
      'Status',
      'Balance',
      'Top up',
      'History',
      'Help',
    ]);
  });

  it('dead-letters garbage with a reason and keeps serving later updates', async () => {
    await publishIngress('telegram', body({ not: 'an update' }), 'tg-garbage');
    await publishIngress('telegram', body(update(9003, '/stop')), 'tg-9003');
    await eventually('the later /stop is routed', async () => {
      return (await stored('session', `respawn.session.${player}.cmd.stop`)).length === 1;
    });
    const dead = await streamMessages(jsm, Streams.dlq.name, 'respawn.dlq.telegram.');
    expect(dead.map((d) => d.subject)).toEqual(['respawn.dlq.telegram.invalid_payload']);
    expect(dead[0]!.headers[HeaderNames.dlqReason]).toContain('update_id');
    await drained(durable);
  });
});
