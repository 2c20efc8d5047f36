/**
 * A hot key's messages in one transaction (a windowed partition, in-process worker): its
 * state is written once per batch and validated once, after the batch's last message; a
 * handler that returns an invalid state mid-batch is still found and dead-lettered alone; a
 * handler that hands back the state it was given writes no new version; an actor that changes
 * its state in place never has a half-changed state written.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ActorKinds, DemoAdd, ErrorCodes, ensureTopology } from '../../contracts/index.ts';
import { DemoState, demoActor } from '../../actors/demo/index.ts';
import {
  createWorker,
  defineActor,
  listDeadLetters,
  systemClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import {
  demoStates,
  eventually,
  publishAdds,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let worker: Worker | undefined;

beforeEach(async () => {
  env = await startRuntimeEnv();
  await ensureTopology(env.jsm, { consumersFor: [ActorKinds.demo], windows: { demo: 64 } });
});
afterEach(async () => {
  await worker?.stop();
  worker = undefined;
  await env.dispose();
});

async function start(actor: ActorDefinition, outcomes: string[]): Promise<void> {
  worker = createWorker({
    nc: env.nc,
    db: env.db,
    log: env.log,
    clock: systemClock,
    actors: [actor],
    onSettled: (p, o) => outcomes.push(`${p.msgId}:${o.kind}`),
  });
  await worker.start();
}

describe('a windowed partition applies a hot key’s messages in one transaction', () => {
  it('writes the state once per batch, in order', async () => {
    await publishAdds(env.js, 'hot', 1, 200);
    const outcomes: string[] = [];
    await start(demoActor as unknown as ActorDefinition, outcomes);
    await eventually(
      'all applied',
      async () => (await demoStates(env.db)).get('hot')?.count === 200,
    );
    const hot = (await demoStates(env.db)).get('hot')!;
    expect(hot.outOfOrder).toBe(0);
    expect(hot.lastN).toBe(200);
    // 200 messages, a window of 64: a handful of transactions, not 200.
    expect(hot.version).toBeLessThanOrEqual(10);
    expect(outcomes.filter((o) => o.endsWith(':ok'))).toHaveLength(200);
  });

  it('finds the one message whose handler returned an invalid state, and applies the rest', async () => {
    const broken = defineActor({
      kind: ActorKinds.demo,
      state: DemoState,
      initial: () => demoActor.initial('x'),
      messages: [DemoAdd],
      handle: (state, msg) => {
        if (msg.type !== DemoAdd.type) return { state };
        // n = 5 breaks the schema (count must be an integer); the others are fine.
        const count = msg.n === 5 ? 0.5 : state.count + 1;
        return {
          state: {
            ...state,
            count,
            lastN: msg.n,
            outOfOrder: state.outOfOrder + (msg.n === state.lastN + 1 ? 0 : 1),
          },
        };
      },
    });
    await publishAdds(env.js, 'hot', 1, 10);
    const outcomes: string[] = [];
    await start(broken as unknown as ActorDefinition, outcomes);
    await eventually('all settled', () => Promise.resolve(outcomes.length >= 10));
    expect(outcomes).toEqual(
      Array.from({ length: 10 }, (_, i) => `add-hot-${i + 1}:${i === 4 ? 'dead' : 'ok'}`),
    );
    const hot = (await demoStates(env.db)).get('hot')!;
    expect({ count: hot.count, lastN: hot.lastN }).toEqual({ count: 9, lastN: 10 });
    // 4 → 6 skipped the dead-lettered 5: the one gap the handler itself counts.
    expect(hot.outOfOrder).toBe(1);
    await eventually(
      'dead letter published',
      async () => (await listDeadLetters(env.jsm)).length === 1,
    );
    const [dl] = await listDeadLetters(env.jsm);
    expect(dl!.code).toBe(ErrorCodes.handlerBug);
    expect(dl!.reason).toMatch(/invalid state/);
  });

  it('never writes the state a mutating handler half-changed before it threw', async () => {
    const inPlace = inPlaceActor(5);
    await publishAdds(env.js, 'hot', 1, 10);
    const outcomes: string[] = [];
    await start(inPlace as unknown as ActorDefinition, outcomes);
    await eventually('all settled', () => Promise.resolve(outcomes.length >= 10));
    expect(outcomes).toEqual(
      Array.from({ length: 10 }, (_, i) => `add-hot-${i + 1}:${i === 4 ? 'dead' : 'ok'}`),
    );
    const hot = (await demoStates(env.db)).get('hot')!;
    // Had 5's change been kept, the count would be 10 and 6 would not follow 999 in order.
    expect({ count: hot.count, lastN: hot.lastN, outOfOrder: hot.outOfOrder }).toEqual({
      count: 9,
      lastN: 10,
      outOfOrder: 1,
    });
  });

  it('writes no new version when a handler hands back the state it was given', async () => {
    // Odd adds count; even ones change nothing, as a status query does.
    const picky = defineActor({
      kind: ActorKinds.demo,
      state: DemoState,
      initial: () => demoActor.initial('x'),
      messages: [DemoAdd],
      handle: (state, msg) => {
        if (msg.type !== DemoAdd.type || msg.n % 2 === 0) return { state };
        return { state: { ...state, count: state.count + 1, lastN: msg.n } };
      },
    });
    const outcomes: string[] = [];
    await start(picky as unknown as ActorDefinition, outcomes);
    await publishAdds(env.js, 'hot', 1, 1);
    await eventually(
      'the first add',
      async () => (await demoStates(env.db)).get('hot')?.count === 1,
    );
    const before = (await demoStates(env.db)).get('hot')!;
    for (const n of [2, 4, 6, 8]) await publishAdds(env.js, 'hot', n, n);
    await publishAdds(env.js, 'quiet', 2, 2);
    await eventually('six handled', () => Promise.resolve(outcomes.length === 6));
    expect(outcomes.every((o) => o.endsWith(':ok'))).toBe(true);
    const after = await demoStates(env.db);
    expect(after.get('hot')).toEqual(before);
    // A key whose only message changed nothing has no state row at all.
    expect(after.has('quiet')).toBe(false);
    // The next change starts from the stored state, one version on.
    await publishAdds(env.js, 'hot', 3, 3);
    await eventually(
      'the second count',
      async () => (await demoStates(env.db)).get('hot')?.count === 2,
    );
    expect((await demoStates(env.db)).get('hot')!.version).toBe(before.version + 1);
  });

  it('starts an in-place actor’s batch from the state it wrote, unless another writer moved it', async () => {
    const outcomes: string[] = [];
    await start(inPlaceActor() as unknown as ActorDefinition, outcomes);
    await publishAdds(env.js, 'hot', 1, 4);
    await eventually('first adds', async () => (await demoStates(env.db)).get('hot')?.count === 4);
    await publishAdds(env.js, 'hot', 5, 6);
    await eventually('second adds', async () => (await demoStates(env.db)).get('hot')?.lastN === 6);
    expect((await demoStates(env.db)).get('hot')!.count).toBe(6);
    // Another writer's version: the next batch starts from what it wrote.
    await env.db.knex.raw(
      `update rt_state set version = version + 1, state = jsonb_set(state::jsonb, '{count}', '100')::json
        where actor = 'demo' and key = 'hot'`,
    );
    await publishAdds(env.js, 'hot', 7, 8);
    await eventually('third adds', async () => (await demoStates(env.db)).get('hot')?.lastN === 8);
    // Had the worker gone on from its own copy, the count would be 8.
    expect((await demoStates(env.db)).get('hot')!.count).toBe(102);
    expect(outcomes.every((o) => o.endsWith(':ok'))).toBe(true);
  });
});

/** Counts adds, changing its state in place; `n = breakAt` throws after changing it. */
function inPlaceActor(breakAt?: number) {
  return defineActor({
    kind: ActorKinds.demo,
    state: DemoState,
    initial: () => demoActor.initial('x'),
    messages: [DemoAdd],
    mutatesState: true,
    handle: (state, msg) => {
      if (msg.type !== DemoAdd.type) return { state };
      state.count += 1;
      if (msg.n === breakAt) {
        state.lastN = 999;
        throw new Error(`n = ${breakAt} breaks after the count was changed`);
      }
      state.outOfOrder += msg.n === state.lastN + 1 ? 0 : 1;
      state.lastN = msg.n;
      return { state };
    },
  });
}
