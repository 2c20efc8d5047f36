/**
 * An idle player through the real runtime (timers in PostgreSQL, swept and fired): the VM's
 * agent keeps reporting heartbeats with the same last input, the player is warned once, and
 * the session stops at the idle timeout.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import {
  ActorKinds,
  SessionAgentReady,
  SessionAllocated,
  SessionHeartbeat,
  SessionStart,
  SessionVerbs,
  Streams,
  TelegramSend,
  cmdSubject,
  type MessageDef,
} from '../../contracts/index.ts';
import {
  createSessionActor,
  defaultSessionConfig,
  type SessionState,
} from '../../actors/session/index.ts';
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
const PLAYER = 'idle1';
const CHAT = '4242';

beforeAll(async () => {
  env = await startRuntimeEnv();
  worker = await startActorWorker(
    env,
    [
      createSessionActor({
        ...defaultSessionConfig,
        requireAdmission: false,
        // Warned 1 s after the last input, stopped 2.5 s after it.
        idleTimeoutMs: 2_500,
        idleWarningMs: 1_500,
      }),
    ],
    { timerPollMs: 50 },
  );
});
afterAll(async () => {
  await worker?.stop();
  await env?.dispose();
});

let n = 0;
async function send<T extends string, P>(
  def: MessageDef<T, P>,
  verb: string,
  body: P,
): Promise<void> {
  await env.js.publish(cmdSubject(ActorKinds.session, PLAYER, verb), def.encode(body), {
    msgID: `idle-test-${n++}`,
  });
}
async function phase(): Promise<string | undefined> {
  const rows = await env.db
    .knex('rt_state')
    .select<{ state: SessionState }[]>('state')
    .where({ actor: 'session', key: PLAYER });
  return rows[0]?.state.phase;
}

it('warns an idle player once, however many heartbeats come, then stops the session', async () => {
  await send(SessionStart, SessionVerbs.start, { requestedBy: 'player', chatId: CHAT });
  await eventually('starting', async () => (await phase()) === 'starting');
  const sessionId = `${PLAYER}-1`;
  const vmName = 'vm-idle1-1-a1-spotnc4';
  await send(SessionAllocated, SessionVerbs.allocated, {
    sessionId,
    region: 'centralindia',
    tier: 'spot',
    size: 'Standard_NC4as_T4_v3',
    pricePerHourPaise: 3_000,
    vmName,
  });
  await eventually('provisioning', async () => (await phase()) === 'provisioning');
  const lastInputAt = new Date().toISOString();
  await send(SessionAgentReady, SessionVerbs.agentReady, {
    sessionId,
    vmName,
    host: '10.0.0.4',
    port: 47989,
    pin: '1234',
  });
  await eventually('ready', async () => (await phase()) === 'ready');
  // The agent reports every 200 ms that the last input is still the same moment.
  const beat = setInterval(() => {
    void send(SessionHeartbeat, SessionVerbs.heartbeat, {
      sessionId,
      vmName,
      at: new Date().toISOString(),
      lastInputAt,
    }).catch(() => undefined);
  }, 200);
  try {
    await eventually('stopped for idleness', async () => (await phase()) === 'stopping', 15_000);
  } finally {
    clearInterval(beat);
  }
  const texts = (
    await streamMessages(env.jsm, Streams.out.name, `respawn.out.telegram.${CHAT}`)
  ).map((m) => TelegramSend.decode(m.data).text);
  expect(texts.filter((t) => t.startsWith('No input for a while'))).toHaveLength(1);
});
