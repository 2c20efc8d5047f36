/**
 * docs/other-services.md, done for real: another service publishes a `session.stop.v1` for a
 * player with nats.js (subject, Nats-Msg-Id, traceparent), and then garbage. The stop reaches
 * the player's session actor (its events say so); the garbage is dead-lettered on
 * `respawn.dlq.session.invalid_payload` with the reason, and nothing crashes.
 */
import { readFile } from 'node:fs/promises';
import { jetstream } from '@nats-io/jetstream';
import { connect, headers, type Msg, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  HeaderNames,
  SessionChanged,
  SessionStart,
  cmdSubject,
  ensureTopology,
} from '../../contracts/index.ts';
import { createSessionActor, defaultSessionConfig } from '../../actors/session/index.ts';
import {
  createWorker,
  systemClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import { eventually, startRuntimeEnv, type RuntimeEnv } from '../support/runtime-env.ts';

// The payloads and ids exactly as the document shows them (checked below).
const PLAYER = '42';
const STOP = {
  type: 'session.stop.v1',
  requestedBy: 'operator',
  reason: 'operator',
  note: 'ticket 991',
};
const STOP_MSG_ID = 'support-ticket-991-stop';
const GARBAGE = { type: 'session.stop.v1', requestedBy: 'support-bot' };
const GARBAGE_MSG_ID = 'support-ticket-992-stop';
const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

let env: RuntimeEnv;
let worker: Worker;
let service: NatsConnection;
beforeAll(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.session] });
  worker = createWorker({
    nc: env.nc,
    db: env.db,
    log: env.log,
    clock: systemClock,
    actors: [
      createSessionActor({
        ...defaultSessionConfig,
        requireAdmission: false,
      }) as unknown as ActorDefinition,
    ],
  });
  await worker.start();
  // The other service has its own connection, as it would.
  service = await connect({ servers: env.nats.url });
});
afterAll(async () => {
  await service?.close();
  await worker?.stop();
  await env?.dispose();
});

/** Every message on `subject` from now on, and a wait for the first one `pick` accepts. */
function watch(nc: NatsConnection, subject: string) {
  const seen: Msg[] = [];
  const sub = nc.subscribe(subject, {
    callback: (err, m) => {
      if (err === null) seen.push(m);
    },
  });
  return {
    async first(what: string, pick: (m: Msg) => boolean = () => true): Promise<Msg> {
      let found: Msg | undefined;
      await eventually(
        what,
        () => Promise.resolve((found = seen.find(pick)) !== undefined),
        20_000,
      );
      return found!;
    },
    stop: () => sub.unsubscribe(),
  };
}

it('shows in docs/other-services.md exactly what this test publishes', async () => {
  const doc = await readFile(new URL('../../docs/other-services.md', import.meta.url), 'utf8');
  for (const s of [
    JSON.stringify(STOP),
    JSON.stringify(GARBAGE),
    STOP_MSG_ID,
    GARBAGE_MSG_ID,
    `respawn.session.${PLAYER}.cmd.stop`,
    `respawn.session.${PLAYER}.evt.>`,
    'respawn.dlq.session.>',
    'respawn.dlq.session.invalid_payload',
  ]) {
    expect(doc, `the document should show ${s}`).toContain(s);
  }
});

it("stops the player's session when another service publishes session.stop.v1", async () => {
  const js = jetstream(service);
  // The player is playing (here: starting), as they would be when support steps in.
  await env.js.publish(
    cmdSubject(ActorKinds.session, PLAYER, 'start'),
    SessionStart.encode({ requestedBy: 'player' }),
    { msgID: 'player-42-start' },
  );
  const events = watch(service, `respawn.session.${PLAYER}.evt.>`);
  await events.first('the session starting', (m) => m.subject.endsWith('.evt.starting'));

  // --- what the document's nats.js example does ---
  const h = headers();
  h.set('traceparent', TRACEPARENT);
  const ack = await js.publish(`respawn.session.${PLAYER}.cmd.stop`, JSON.stringify(STOP), {
    msgID: STOP_MSG_ID,
    headers: h,
  });
  expect(ack).toMatchObject({ stream: 'RESPAWN_SESSION_CMD', duplicate: false });
  const again = await js.publish(`respawn.session.${PLAYER}.cmd.stop`, JSON.stringify(STOP), {
    msgID: STOP_MSG_ID,
    headers: h,
  });
  expect(again.duplicate, 'the same Nats-Msg-Id twice is stored once').toBe(true);

  const stopping = await events.first('the session stopping', (m) =>
    m.subject.endsWith('.evt.stopping'),
  );
  events.stop();
  expect(stopping.subject).toBe(`respawn.session.${PLAYER}.evt.stopping`);
  const e = SessionChanged.decode(stopping.data);
  expect(e).toMatchObject({ phase: 'stopping', previous: 'starting', reason: 'operator' });
  expect(stopping.headers?.get(HeaderNames.type)).toBe(SessionChanged.type);
  // The trace continues from the other service's traceparent.
  expect(stopping.headers?.get(HeaderNames.traceparent)).toContain(
    '4bf92f3577b34da6a3ce929d0e0e4736',
  );
  const inbox = await env.db.knex('rt_inbox').where({ actor: 'session', msg_id: STOP_MSG_ID });
  expect(inbox, 'handled once').toHaveLength(1);
});

it('dead-letters garbage on respawn.dlq.session.<code> with the reason', async () => {
  const js = jetstream(service);
  const dlq = watch(service, 'respawn.dlq.session.>');
  // --- what the document's "garbage" example does ---
  await js.publish(`respawn.session.${PLAYER}.cmd.stop`, JSON.stringify(GARBAGE), {
    msgID: GARBAGE_MSG_ID,
  });
  const dead = await dlq.first(
    'the dead letter',
    (m) => m.headers?.get(HeaderNames.dlqMsgId) === GARBAGE_MSG_ID,
  );
  dlq.stop();
  expect(dead.subject).toBe('respawn.dlq.session.invalid_payload');
  expect(dead.headers?.get(HeaderNames.dlqCode)).toBe('invalid_payload');
  expect(dead.headers?.get(HeaderNames.dlqReason)).toMatch(
    /invalid session\.stop\.v1: .*requestedBy/,
  );
  expect(dead.headers?.get(HeaderNames.dlqSubject)).toMatch(
    new RegExp(`^respawn\\.session\\.${PLAYER}\\.cmd\\.stop\\.\\d+$`),
  );
  expect(dead.string(), 'the original payload, unchanged').toBe(JSON.stringify(GARBAGE));

  // The player's later commands are still handled: the actor did not stop on garbage.
  const events = watch(service, `respawn.session.${PLAYER}.evt.status`);
  await js.publish(
    `respawn.session.${PLAYER}.cmd.status`,
    JSON.stringify({ type: 'session.status.v1', requestedBy: 'operator' }),
    { msgID: 'support-ticket-992-status' },
  );
  const status = await events.first('a status answer');
  events.stop();
  expect(SessionChanged.decode(status.data).phase).toBe('stopping');
});
