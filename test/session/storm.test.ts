/**
 * "Start pressed a thousand times" through the real runtime: the session actor and the
 * region's allocator, on a private nats-server and a fresh database, create one VM, and the
 * player's chat gets one "already starting" for them, not 999.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  AllocUsage,
  AzureCreateVm,
  SessionStart,
  Streams,
  TelegramSend,
  cmdSubject,
  outTelegramSubject,
} from '../../contracts/index.ts';
import { createAllocatorActor } from '../../actors/allocator/index.ts';
import { createSessionActor, defaultSessionConfig } from '../../actors/session/index.ts';
import type { Worker } from '../../actors/runtime/index.ts';
import { startActorWorker } from '../support/actor-worker.ts';
import {
  eventually,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let worker: Worker;
beforeAll(async () => {
  env = await startRuntimeEnv();
  worker = await startActorWorker(env, [
    createSessionActor({
      ...defaultSessionConfig,
      requireAdmission: false,
    }),
    createAllocatorActor(),
  ]);
});
afterAll(async () => {
  await worker?.stop();
  await env?.dispose();
});

it('creates one VM for a storm of 1,000 start commands from one player', async () => {
  await env.js.publish(
    cmdSubject(ActorKinds.alloc, 'centralindia', 'usage'),
    AllocUsage.encode({
      at: new Date().toISOString(),
      usages: [
        { name: 'lowPriorityCores', current: 0, limit: 400 },
        { name: 'standardNCASv3_T4Family', current: 0, limit: 400 },
      ],
    }),
  );
  const subject = cmdSubject(ActorKinds.session, 'storm', 'start');
  const acks = [];
  const pressed = Date.now();
  for (let i = 0; i < 1_000; i++) {
    acks.push(
      env.js.publish(subject, SessionStart.encode({ requestedBy: 'player', chatId: '5151' }), {
        msgID: `click-${i}`,
      }),
    );
  }
  await Promise.all(acks);
  await eventually('every start handled', async () => {
    const r = await env.db
      .knex('rt_inbox')
      .count<{ c: string }[]>({ c: '*' })
      .where({ actor: 'session' });
    return Number(r[0]!.c) >= 1_000;
  });
  const handledMs = Date.now() - pressed;
  await eventually('the allocation request handled', async () => {
    const r = await env.db
      .knex('rt_inbox')
      .count<{ c: string }[]>({ c: '*' })
      .where({ actor: 'alloc' });
    return Number(r[0]!.c) >= 2;
  });
  await eventually('outbox flushed', async () => {
    const r = await env.db.knex('rt_outbox').count<{ c: string }[]>({ c: '*' });
    return Number(r[0]!.c) === 0;
  });
  const creates = (
    await streamMessages(env.jsm, Streams.out.name, 'respawn.out.azure.centralindia')
  ).filter((m) => m.headers['Respawn-Type'] === AzureCreateVm.type);
  expect(creates).toHaveLength(1);
  // One "already starting" per repeatReplyMs (10 s) the storm took to handle: one, here.
  const told = (await streamMessages(env.jsm, Streams.out.name, outTelegramSubject('5151'))).map(
    (m) => TelegramSend.decode(m.data).text,
  );
  expect(told.filter((t) => t.startsWith('Starting your rig'))).toHaveLength(1);
  const already = told.filter((t) => t.includes('already starting')).length;
  expect(already).toBeGreaterThanOrEqual(1);
  expect(already).toBeLessThanOrEqual(Math.floor(handledMs / 10_000) + 1);
  // The allocator's decision reaches the session actor after the allocator's inbox row exists.
  await eventually('the session is provisioning its one VM', async () => {
    const session = (
      await env.db.knex('rt_state').select('state').where({ actor: 'session', key: 'storm' })
    )[0] as { state: { phase: string; seq: number } } | undefined;
    return session?.state.phase === 'provisioning';
  });
  const session = (
    await env.db.knex('rt_state').select('state').where({ actor: 'session', key: 'storm' })
  )[0] as {
    state: { phase: string; seq: number };
  };
  expect(session.state).toMatchObject({ phase: 'provisioning', seq: 1 });
});
