/**
 * A timer fires long after the message that set it, in a transaction of its own: its firing
 * carries the setting message's trace context (stored with the timer, rt_timer.trace), so the
 * firing's trace can link to the command that caused it (actors/runtime/tracing.ts).
 */
import { headers as natsHeaders } from '@nats-io/transport-node';
import { afterEach, beforeEach, expect, it } from 'vitest';
import {
  ActorKinds,
  DemoRemind,
  HeaderNames,
  TimerFired,
  cmdSubject,
} from '../../contracts/index.ts';
import { demoActor } from '../../actors/demo/index.ts';
import {
  createWorker,
  systemClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import {
  demoStates,
  eventually,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

const TRACEPARENT = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

let env: RuntimeEnv;
let worker: Worker | undefined;

beforeEach(async () => {
  env = await startRuntimeEnv();
});
afterEach(async () => {
  await worker?.stop();
  await env.dispose();
});

it('fires a timer with the trace context of the message that set it', async () => {
  worker = createWorker({
    nc: env.nc,
    db: env.db,
    log: env.log,
    clock: systemClock,
    actors: [demoActor as unknown as ActorDefinition],
    timerPollMs: 50,
  });
  await worker.start();
  const h = natsHeaders();
  h.set(HeaderNames.traceparent, TRACEPARENT);
  await env.js.publish(
    cmdSubject(ActorKinds.demo, 'traced', 'remind'),
    DemoRemind.encode({ name: 'ping', at: new Date(Date.now() + 200).toISOString() }),
    { headers: h, msgID: 'remind-traced' },
  );
  // An untraced timer next to it gets no trace headers at all.
  await env.js.publish(
    cmdSubject(ActorKinds.demo, 'plain', 'remind'),
    DemoRemind.encode({ name: 'ping', at: new Date(Date.now() + 200).toISOString() }),
    { msgID: 'remind-plain' },
  );
  await eventually('both reminders fired', async () => {
    const s = await demoStates(env.db);
    return s.get('traced')?.reminders === 1 && s.get('plain')?.reminders === 1;
  });
  const firings = (await streamMessages(env.jsm, 'RESPAWN_DEMO_CMD', 'respawn.demo.')).filter(
    (m) => m.headers[HeaderNames.type] === TimerFired.type,
  );
  const bySubjectKey = new Map(firings.map((m) => [m.subject.split('.')[2], m]));
  expect(bySubjectKey.get('traced')?.headers[HeaderNames.traceparent]).toBe(TRACEPARENT);
  expect(bySubjectKey.get('plain')).toBeDefined();
  expect(bySubjectKey.get('plain')?.headers[HeaderNames.traceparent]).toBeUndefined();
});
