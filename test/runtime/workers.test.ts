/**
 * The runtime's central guarantees with real processes: per-key order and exactly-once
 * effects across three worker processes and three publishers, including while one worker is
 * killed with SIGKILL and another is paused with SIGSTOP and resumed (fencing).
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect } from '@nats-io/transport-node';
import { jetstream } from '@nats-io/jetstream';
import type { ChildProcess } from 'node:child_process';
import {
  addedEvents,
  demoStates,
  eventually,
  exited,
  publishAdds,
  spawnWorker,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

const KEYS = 500;
const PER_KEY = 20; // 10,000 messages

let env: RuntimeEnv;
let workers: ChildProcess[] = [];

beforeEach(async () => {
  env = await startRuntimeEnv();
});
afterEach(async () => {
  for (const w of workers) {
    if (w.exitCode === null && w.signalCode === null) {
      w.kill('SIGCONT');
      w.kill('SIGKILL');
    }
  }
  await Promise.all(workers.map((w) => exited(w)));
  workers = [];
  await env.dispose();
});

/** Three publishers on their own connections; each owns a third of the keys, in order. */
async function publishAll(url: string): Promise<void> {
  await Promise.all(
    [0, 1, 2].map(async (p) => {
      const nc = await connect({ servers: url });
      const js = jetstream(nc);
      const mine = Array.from({ length: KEYS }, (_, k) => k).filter((k) => k % 3 === p);
      for (let n = 1; n <= PER_KEY; n += 5) {
        await Promise.all(mine.map((k) => publishAdds(js, `key${k}`, n, n + 4)));
      }
      await nc.close();
    }),
  );
}

async function handled(): Promise<number> {
  const r = await env.db
    .knex('rt_inbox')
    .count<{ c: string }[]>({ c: '*' })
    .where({ actor: 'demo' });
  return Number(r[0]?.c ?? 0);
}

async function expectEveryKeyInOrderOnce(): Promise<void> {
  await eventually(
    'all 10,000 messages handled',
    async () => (await handled()) >= KEYS * PER_KEY,
    120_000,
  );
  const states = await demoStates(env.db);
  expect(states.size).toBe(KEYS);
  const expected = Array.from({ length: PER_KEY }, (_, i) => i + 1);
  for (const [key, s] of states) {
    expect({ key, seen: s.seen, outOfOrder: s.outOfOrder, count: s.count }).toEqual({
      key,
      seen: expected,
      outOfOrder: 0,
      count: PER_KEY,
    });
    // One state write per message: a stale writer would have bumped or skipped a version.
    expect(s.version).toBe(PER_KEY);
  }
  await eventually('every emitted event published', async () => {
    const r = await env.db.knex('rt_outbox').count<{ c: string }[]>({ c: '*' });
    return Number(r[0]?.c ?? 0) === 0;
  });
  const events = await addedEvents(env.js, env.jsm);
  const perPair = new Map<string, number>();
  for (const e of events) perPair.set(`${e.key}/${e.n}`, (perPair.get(`${e.key}/${e.n}`) ?? 0) + 1);
  expect(perPair.size).toBe(KEYS * PER_KEY);
  expect([...perPair.values()].every((c) => c === 1)).toBe(true);
}

describe('three worker processes, three publishers, 10,000 messages over 500 keys', () => {
  it('applies every key’s messages in publish order, each exactly once', async () => {
    workers = [spawnWorker(env), spawnWorker(env), spawnWorker(env)];
    await publishAll(env.nats.url);
    await expectEveryKeyInOrderOnce();
    for (const w of workers) w.kill('SIGTERM');
    expect(await Promise.all(workers.map((w) => exited(w)))).toEqual([0, 0, 0]);
  });

  it('loses and doubles nothing while one worker is killed and another paused', async () => {
    workers = [spawnWorker(env), spawnWorker(env), spawnWorker(env)];
    const [victim, sleeper] = workers as [ChildProcess, ChildProcess, ChildProcess];
    const publishing = publishAll(env.nats.url);
    await eventually(
      'a quarter handled',
      async () => (await handled()) >= (KEYS * PER_KEY) / 4,
      60_000,
    );
    victim.kill('SIGKILL');
    const killedAt = Date.now();
    sleeper.kill('SIGSTOP');
    // Longer than ack_wait: the sleeper's in-flight messages are redelivered to the third worker.
    const before = await handled();
    await eventually(
      'progress without the killed and the paused worker',
      async () => (await handled()) > before + 500,
      30_000,
    );
    const takeoverMs = Date.now() - killedAt;
    await new Promise((r) => setTimeout(r, 6_000));
    sleeper.kill('SIGCONT');
    await publishing;
    await expectEveryKeyInOrderOnce();
    console.log(`progress resumed ${takeoverMs} ms after kill -9 and SIGSTOP`);
    expect(takeoverMs).toBeLessThan(15_000);
  });
});
