/**
 * Runtime guarantees with an in-process worker on real NATS and PostgreSQL: de-duplication,
 * redelivery after commit, dead letters for bad input and terminal errors (and re-injection),
 * in-place retries that keep a key's order, and durable timers across a restart.
 */
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { pino, type Logger } from 'pino';
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  ActorKinds,
  DemoAdd,
  DemoFail,
  DemoRemind,
  ErrorCodes,
  Streams,
  cmdSubject,
  commandStreamName,
  partitionOf,
  PARTITIONS,
} from '../../contracts/index.ts';
import { DemoState, demoActor } from '../../actors/demo/index.ts';
import {
  createWorker,
  defineActor,
  listDeadLetters,
  manualClock,
  reinjectDeadLetter,
  systemClock,
  type ActorDefinition,
  type Clock,
  type Outcome,
  type Prepared,
  type Worker,
  type WorkerOptions,
} from '../../actors/runtime/index.ts';
import {
  addedEvents,
  demoStates,
  eventually,
  publish,
  publishAdds,
  startRuntimeEnv,
  streamMessages,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let workers: Worker[] = [];
let logLines: Record<string, unknown>[] = [];

function captureLog(level = 'info'): Logger {
  return pino(
    { level },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const line of chunk.toString().split('\n').filter(Boolean)) {
          logLines.push(JSON.parse(line) as Record<string, unknown>);
        }
        cb();
      },
    }),
  );
}

async function startWorker(
  extra: Partial<WorkerOptions> = {},
  clock: Clock = systemClock,
): Promise<Worker> {
  const w = createWorker({
    nc: env.nc,
    db: env.db,
    log: captureLog(),
    clock,
    actors: [demoActor as unknown as ActorDefinition],
    timerPollMs: 100,
    ...extra,
  });
  await w.start();
  workers.push(w);
  return w;
}

beforeEach(async () => {
  env = await startRuntimeEnv();
  logLines = [];
});
afterEach(async () => {
  for (const w of workers) await w.stop();
  workers = [];
  await env.dispose();
});

const enc = new TextEncoder();

describe('exactly-once effects', () => {
  it('drops a second publish with the same Nats-Msg-Id', async () => {
    await startWorker();
    await publish(env.js, 'dup', 'add', DemoAdd, { n: 1, amount: 5 }, 'same-id');
    await publish(env.js, 'dup', 'add', DemoAdd, { n: 1, amount: 5 }, 'same-id');
    await publish(env.js, 'dup', 'add', DemoAdd, { n: 2, amount: 1 }, 'next-id');
    await eventually(
      'second message applied',
      async () => (await demoStates(env.db)).get('dup')?.lastN === 2,
    );
    const s = (await demoStates(env.db)).get('dup')!;
    expect(s.total).toBe(6);
    expect(s.seen).toEqual([1, 2]);
  });

  it('has no second effect when a message is redelivered after its transaction committed', async () => {
    const outcomes: Outcome['kind'][] = [];
    let dropped = 0;
    await startWorker({
      // The first delivery commits but is never acked, as if the worker died right after commit.
      dropSettle: (p: Prepared) => p.msgId === 'crash-after-commit' && dropped++ === 0,
      onSettled: (p, o) => {
        if (p.msgId === 'crash-after-commit') outcomes.push(o.kind);
      },
    });
    await publish(env.js, 'redeliver', 'add', DemoAdd, { n: 1, amount: 7 }, 'crash-after-commit');
    await eventually(
      'redelivered and settled',
      () => Promise.resolve(outcomes.includes('duplicate')),
      20_000,
    );
    expect(outcomes).toEqual(['ok', 'duplicate']);
    const s = (await demoStates(env.db)).get('redeliver')!;
    expect(s.total).toBe(7);
    expect(s.count).toBe(1);
    await eventually(
      'event published',
      async () => (await addedEvents(env.js, env.jsm)).length === 1,
    );
  });
});

describe('dead letters', () => {
  it('dead-letters bad input and terminal errors with reasons, logs each once, and moves on', async () => {
    await startWorker();
    const key = 'bad1';
    const subj = cmdSubject(ActorKinds.demo, key, 'add');
    const wrongPartition = `${subj}.${(partitionOf(key) + 1) % PARTITIONS}`;
    await publishAdds(env.js, key, 1, 1);
    await env.js.publish(subj, enc.encode('not json {'), { msgID: 'b-json' });
    await env.js.publish(subj, enc.encode('{"type":"demo.add.v1"}'), { msgID: 'b-missing' });
    await env.js.publish(subj, enc.encode('{"type":"demo.add.v1","n":"x"}'), { msgID: 'b-types' });
    await env.js.publish(
      subj,
      enc.encode(JSON.stringify({ type: 'demo.add.v1', n: 9, pad: 'x'.repeat(70_000) })),
      {
        msgID: 'b-big',
      },
    );
    await env.js.publish(subj, enc.encode('{"type":"demo.nope.v1"}'), { msgID: 'b-unknown' });
    await publish(
      env.js,
      key,
      'fail',
      DemoFail,
      { mode: 'terminal', times: 1, n: 50 },
      'b-terminal',
    );
    await env.js.publish(wrongPartition, DemoAdd.encode({ n: 99, amount: 1 }), {
      msgID: 'b-partition',
    });
    await env.js.publish('respawn.demo.k$y.cmd.add', DemoAdd.encode({ n: 1, amount: 1 }), {
      msgID: 'b-token',
    });
    // A payload on another command's verb (a publisher allowed `fail` sending an `add`).
    await env.js.publish(
      cmdSubject(ActorKinds.demo, key, 'fail'),
      DemoAdd.encode({ n: 98, amount: 1 }),
      { msgID: 'b-verb' },
    );
    await publishAdds(env.js, key, 2, 3);

    await eventually(
      'later messages of the key handled',
      async () => (await demoStates(env.db)).get(key)?.lastN === 3,
    );
    expect((await demoStates(env.db)).get(key)!.seen).toEqual([1, 2, 3]);
    await eventually(
      'all dead letters published',
      async () => (await listDeadLetters(env.jsm)).length === 9,
    );
    const dls = await listDeadLetters(env.jsm);
    const byId = new Map(dls.map((d) => [d.originalMsgId, d]));
    expect(Object.fromEntries([...byId].map(([id, d]) => [id, d.code]))).toEqual({
      'b-json': ErrorCodes.invalidJson,
      'b-missing': ErrorCodes.invalidPayload,
      'b-types': ErrorCodes.invalidPayload,
      'b-big': ErrorCodes.payloadTooLarge,
      'b-unknown': ErrorCodes.unknownType,
      'b-terminal': ErrorCodes.rejected,
      'b-partition': ErrorCodes.wrongPartition,
      'b-token': ErrorCodes.badSubject,
      'b-verb': ErrorCodes.badSubject,
    });
    expect(byId.get('b-verb')!.reason).toBe(
      'demo.add.v1 is not a cmd.fail command (it travels on cmd.add)',
    );
    const json = byId.get('b-json')!;
    expect(new TextDecoder().decode(json.data)).toBe('not json {');
    expect(json.subject).toBe('respawn.dlq.demo.invalid_json');
    expect(json.originalSubject).toBe(`${subj}.${partitionOf(key)}`);
    expect(json.reason).toMatch(/not UTF-8 JSON/);
    expect(byId.get('b-types')!.reason).toMatch(/n: /);

    const logged = logLines.filter((l) => l.msg === 'message dead-lettered');
    expect(logged.map((l) => l.msgId).sort()).toEqual([...byId.keys()].sort());
    for (const l of logged) expect(typeof l.subject).toBe('string');
  });

  it('refuses at publish a command whose partition token is no partition (never stored, never lost)', async () => {
    const subj = cmdSubject(ActorKinds.demo, 'odd', 'add');
    for (const token of ['x', '64', '03']) {
      await expect(
        env.js.publish(`${subj}.${token}`, DemoAdd.encode({ n: 1, amount: 1 }), {
          msgID: `odd-${token}`,
        }),
        token,
      ).rejects.toThrow();
    }
    const info = await env.jsm.streams.info(commandStreamName(ActorKinds.demo));
    expect(info.state.messages).toBe(0);
  });

  it('logs a message its handler ignored, with the reason, and acks it', async () => {
    await startWorker();
    // Fails once (parked, retried from the parking lot), then changes nothing.
    await publish(
      env.js,
      'calm',
      'fail',
      DemoFail,
      { mode: 'retryable', times: 1, retryAfterMs: 50 },
      'c-1',
    );
    await eventually('the ignored message is logged', () =>
      Promise.resolve(logLines.some((l) => l.msg === 'message ignored')),
    );
    expect(logLines.filter((l) => l.msg === 'message ignored')).toEqual([
      expect.objectContaining({
        actor: 'demo',
        msgId: 'c-1',
        reason: 'demo fail with nothing to record',
      }),
    ]);
    expect(await listDeadLetters(env.jsm)).toEqual([]);
  });

  it('logs each handled message at debug, with its trace id, key and subject', async () => {
    await startWorker({ log: captureLog('debug') });
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const h = natsHeaders();
    h.set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`);
    h.set('Nats-Msg-Id', 'traced-1');
    await env.js.publish(
      cmdSubject(ActorKinds.demo, 'traced', 'add'),
      DemoAdd.encode({ n: 1, amount: 2 }),
      {
        headers: h,
      },
    );
    await eventually('handled', async () => (await demoStates(env.db)).get('traced')?.lastN === 1);
    await eventually('logged', () =>
      Promise.resolve(logLines.some((l) => l.msg === 'message handled')),
    );
    expect(logLines.filter((l) => l.msg === 'message handled')).toEqual([
      expect.objectContaining({
        traceId,
        actor: 'demo',
        key: 'traced',
        msgId: 'traced-1',
      }),
    ]);
    const [line] = logLines.filter((l) => l.msg === 'message handled');
    expect(line!.subject).toMatch(/^respawn\.demo\.traced\.cmd\.add/);
  });

  it('logs a message ignored as it comes from the stream, and counts it ignored, not ok', async () => {
    const calm = defineActor({
      kind: ActorKinds.demo,
      state: DemoState,
      initial: () => demoActor.initial('x'),
      messages: [DemoAdd],
      handle: (state, msg) =>
        msg.type === DemoAdd.type && msg.n === 2
          ? { state, ignored: 'two is not for me' }
          : { state: { ...state, lastN: msg.type === DemoAdd.type ? msg.n : state.lastN } },
    });
    const outcomes: string[] = [];
    await startWorker({
      actors: [calm as unknown as ActorDefinition],
      onSettled: (p, o) => outcomes.push(`${p.msgId}:${o.kind}`),
    });
    await publishAdds(env.js, 'calm', 1, 3);
    await eventually(
      'the key went on',
      async () => (await demoStates(env.db)).get('calm')?.lastN === 3,
    );
    expect(outcomes).toEqual(['add-calm-1:ok', 'add-calm-2:ok', 'add-calm-3:ok']);
    expect(logLines.filter((l) => l.msg === 'message ignored')).toEqual([
      expect.objectContaining({ actor: 'demo', msgId: 'add-calm-2', reason: 'two is not for me' }),
    ]);
  });

  it('re-injects a dead letter to its subject once its cause is fixed', async () => {
    const first = await startWorker({ maxAttempts: 2, backoff: { baseMs: 10, maxMs: 50 } });
    await publish(
      env.js,
      'again',
      'fail',
      DemoFail,
      { mode: 'retryable', times: 3, n: 7 },
      'flaky-1',
    );
    await eventually(
      'dead-lettered',
      async () => (await listDeadLetters(env.jsm)).length === 1,
      20_000,
    );
    const [dl] = await listDeadLetters(env.jsm);
    expect(dl!.code).toBe(ErrorCodes.attemptsExhausted);
    await first.stop();
    // The "fix": a worker allowed more attempts.
    await startWorker({ maxAttempts: 10, backoff: { baseMs: 10, maxMs: 50 } });
    const r1 = await reinjectDeadLetter(env.js, dl!);
    const r2 = await reinjectDeadLetter(env.js, dl!);
    expect(r1.subject).toBe(cmdSubject(ActorKinds.demo, 'again', 'fail'));
    expect(r2.duplicate).toBe(true);
    await eventually(
      'handled after re-injection',
      async () => (await demoStates(env.db)).get('again')?.lastN === 7,
      20_000,
    );
  });
});

describe('handler bugs', () => {
  it('dead-letters an unexpected exception from a handler at once instead of retrying it', async () => {
    const buggy = defineActor({
      kind: ActorKinds.demo,
      state: DemoState,
      initial: () => demoActor.initial('x'),
      messages: [DemoAdd],
      handle: (state, msg) => {
        if (msg.type === DemoAdd.type && msg.n === 2) throw new TypeError('boom');
        return { state: { ...state, lastN: msg.type === DemoAdd.type ? msg.n : state.lastN } };
      },
    });
    const outcomes: string[] = [];
    await startWorker({
      actors: [buggy as unknown as ActorDefinition],
      onSettled: (p, o) => outcomes.push(`${p.msgId}:${o.kind}`),
    });
    await publishAdds(env.js, 'bug', 1, 3);
    await eventually(
      'key moved past the bug',
      async () => (await demoStates(env.db)).get('bug')?.lastN === 3,
    );
    expect(outcomes).toEqual(['add-bug-1:ok', 'add-bug-2:dead', 'add-bug-3:ok']);
    await eventually(
      'dead letter published',
      async () => (await listDeadLetters(env.jsm)).length === 1,
    );
    const [dl] = await listDeadLetters(env.jsm);
    expect(dl!.code).toBe(ErrorCodes.handlerBug);
    expect(dl!.reason).toMatch(/boom/);
  });
});

describe('actor records', () => {
  it('writes records in the state’s transaction; one that breaks a unique key is retried, then dead-lettered without effect', async () => {
    await env.db.knex.raw('create table t_rec (id integer primary key, key text not null)');
    const recording = defineActor({
      kind: ActorKinds.demo,
      state: DemoState,
      initial: () => demoActor.initial('x'),
      messages: [DemoAdd],
      handle: (state, msg) => {
        if (msg.type !== DemoAdd.type) return { state };
        return { state: { ...state, count: state.count + 1 }, records: [{ id: msg.n }] };
      },
      persist: async (trx, rows) => {
        await trx('t_rec').insert(
          rows.map((r) => ({ id: (r.record as { id: number }).id, key: r.key })),
        );
      },
    });
    await startWorker({
      actors: [recording as unknown as ActorDefinition],
      maxAttempts: 2,
      backoff: { baseMs: 10, maxMs: 20 },
    });
    await publish(env.js, 'rec', 'add', DemoAdd, { n: 1, amount: 1 }, 'rec-1');
    await publish(env.js, 'rec', 'add', DemoAdd, { n: 2, amount: 1 }, 'rec-2');
    await publish(env.js, 'rec', 'add', DemoAdd, { n: 1, amount: 1 }, 'rec-1-again');
    await publish(env.js, 'rec', 'add', DemoAdd, { n: 3, amount: 1 }, 'rec-3');
    await eventually(
      'last message applied',
      async () => (await demoStates(env.db)).get('rec')?.count === 3,
      20_000,
    );
    const rows = await env.db.knex('t_rec').select<{ id: number }[]>('id').orderBy('id');
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3]);
    await eventually(
      'dead letter published',
      async () => (await listDeadLetters(env.jsm)).length === 1,
    );
    const [dl] = await listDeadLetters(env.jsm);
    expect(dl!.originalMsgId).toBe('rec-1-again');
    expect(dl!.code).toBe(ErrorCodes.attemptsExhausted);
    expect(dl!.reason).toMatch(/duplicate key/);
  });
});

describe('retries', () => {
  it('retries a failing message in place with backoff; the key’s later messages wait behind it', async () => {
    const outcomes: string[] = [];
    await startWorker({
      backoff: { baseMs: 20, maxMs: 100 },
      parkPollMs: 20,
      onSettled: (p, o) => {
        if (p.key === 'retry1') outcomes.push(`${p.msgId}:${o.kind}`);
      },
    });
    await publishAdds(env.js, 'retry1', 1, 1);
    await publish(
      env.js,
      'retry1',
      'fail',
      DemoFail,
      { mode: 'retryable', times: 2, n: 100 },
      'flaky',
    );
    await publishAdds(env.js, 'retry1', 2, 2);
    await eventually(
      'all applied',
      async () => (await demoStates(env.db)).get('retry1')?.seen.length === 3,
      20_000,
    );
    expect((await demoStates(env.db)).get('retry1')!.seen).toEqual([1, 100, 2]);
    expect(outcomes).toEqual([
      'add-retry1-1:ok',
      'flaky:parked', // first attempt fails: parked, acked
      'add-retry1-2:parked', // behind it
      'flaky:parked', // second attempt fails
      'flaky:ok', // third succeeds
      'add-retry1-2:ok', // then the key moves on
    ]);
    expect(await env.db.knex('rt_parked').count<{ c: string }[]>({ c: '*' })).toEqual([{ c: '0' }]);
  });

  it('blocks only the failing key: another key of the same partition goes on meanwhile', async () => {
    // Two keys that share a partition (one JetStream consumer, max_ack_pending 1).
    const a = 'blockA';
    let b = '';
    for (let i = 0; b === ''; i++) if (partitionOf(`other${i}`) === partitionOf(a)) b = `other${i}`;
    const order: string[] = [];
    // Two retries 2.5 s apart: room for b's five transactions on a loaded machine. (The demo's
    // default 100 ms between retries left b ~200 ms, which CI, with other files running beside
    // this one, once overran.)
    await startWorker({
      parkPollMs: 20,
      onSettled: (p, o) => order.push(`${p.msgId}:${o.kind}`),
    });
    await publish(
      env.js,
      a,
      'fail',
      DemoFail,
      { mode: 'retryable', times: 2, n: 100, retryAfterMs: 2_500 },
      'a-flaky',
    );
    await publishAdds(env.js, a, 1, 1);
    await publishAdds(env.js, b, 1, 5);
    await eventually(
      'both keys done',
      async () => {
        const s = await demoStates(env.db);
        return s.get(a)?.seen.length === 2 && s.get(b)?.count === 5;
      },
      30_000,
    );
    // All of b's messages were handled before a's failing message finally succeeded.
    const aDone = order.indexOf('a-flaky:ok');
    expect(aDone).toBeGreaterThan(-1);
    for (let n = 1; n <= 5; n++) expect(order.indexOf(`add-${b}-${n}:ok`)).toBeLessThan(aDone);
    expect((await demoStates(env.db)).get(a)!.seen).toEqual([100, 1]);
  });

  it('dead-letters the head of a parking lot after the attempt limit and lets the key go on', async () => {
    await startWorker({ maxAttempts: 3, backoff: { baseMs: 10, maxMs: 20 }, parkPollMs: 20 });
    await publish(
      env.js,
      'lot',
      'fail',
      DemoFail,
      { mode: 'retryable', times: 50, n: 100 },
      'lot-bad',
    );
    await publishAdds(env.js, 'lot', 1, 2);
    await eventually(
      'key went on',
      async () => (await demoStates(env.db)).get('lot')?.seen.length === 2,
      20_000,
    );
    expect((await demoStates(env.db)).get('lot')!.seen).toEqual([1, 2]);
    await eventually(
      'dead letter published',
      async () => (await listDeadLetters(env.jsm)).length === 1,
    );
    const [dl] = await listDeadLetters(env.jsm);
    expect(dl!.originalMsgId).toBe('lot-bad');
    expect(dl!.code).toBe(ErrorCodes.attemptsExhausted);
  });
});

describe('durable timers', () => {
  it('fires a timer once after all workers were stopped and time moved on, coalescing resets', async () => {
    const t0 = new Date('2026-01-01T00:00:00Z');
    const clock = manualClock(t0);
    const a = await startWorker({}, clock);
    const at = (h: number): string => new Date(t0.getTime() + h * 3_600_000).toISOString();
    // The same timer set three times, and a second one cancelled: one firing expected.
    await publish(env.js, 'tm', 'remind', DemoRemind, { name: 'idle', at: at(1) }, 'r1');
    await publish(env.js, 'tm', 'remind', DemoRemind, { name: 'idle', at: at(2) }, 'r2');
    await publish(env.js, 'tm', 'remind', DemoRemind, { name: 'idle', at: at(3) }, 'r3');
    await publish(env.js, 'tm', 'remind', DemoRemind, { name: 'other', at: at(1) }, 'r4');
    await publish(env.js, 'tm', 'remind', DemoRemind, { name: 'other', cancel: true }, 'r5');
    await eventually('timers stored', async () => {
      const rows = await env.db
        .knex('rt_timer')
        .select<{ name: string; fire_at: string }[]>('name', 'fire_at');
      return rows.length === 1 && new Date(rows[0]!.fire_at).toISOString() === at(3);
    });
    await a.stop();

    clock.advance(10 * 3_600_000);
    await startWorker({}, clock);
    await eventually(
      'timer fired',
      async () => (await demoStates(env.db)).get('tm')?.reminders === 1,
      20_000,
    );
    await eventually(
      'timer consumed',
      async () => (await env.db.knex('rt_timer').count<{ c: string }[]>({ c: '*' }))[0]!.c === '0',
    );
    const fired = await streamMessages(
      env.jsm,
      Streams.events.name,
      'respawn.demo.tm.evt.reminded',
    );
    expect(fired).toHaveLength(1);
    const ev = JSON.parse(new TextDecoder().decode(fired[0]!.data)) as {
      dueAt: string;
      firedAt: string;
    };
    expect(ev.dueAt).toBe(at(3));
    expect(ev.firedAt).toBe(at(10));
    expect((await demoStates(env.db)).get('tm')!.reminders).toBe(1);
  });
});
