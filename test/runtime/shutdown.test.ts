/**
 * Graceful shutdown: SIGTERM stops pulling, finishes in-flight transactions, settles them and
 * flushes the outbox before exiting 0, so the next worker redoes nothing and loses nothing.
 */
import { afterEach, beforeEach, expect, it } from 'vitest';
import type { Outcome } from '../../actors/runtime/index.ts';
import {
  demoStates,
  demoWorker,
  eventually,
  exited,
  publishAdds,
  spawnWorker,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
beforeEach(async () => {
  env = await startRuntimeEnv();
});
afterEach(async () => {
  await env.dispose();
});

const KEYS = 200;
const PER_KEY = 15;

it('SIGTERM finishes in-flight work, flushes the outbox and exits 0; the next worker redoes nothing', async () => {
  const child = spawnWorker(env);
  for (let n = 1; n <= PER_KEY; n += 5) {
    await Promise.all(
      Array.from({ length: KEYS }, (_, k) => publishAdds(env.js, `s${k}`, n, n + 4)),
    );
  }
  await eventually('some handled', async () => {
    const r = await env.db.knex('rt_inbox').count<{ c: string }[]>({ c: '*' });
    return Number(r[0]!.c) >= 300;
  });
  child.kill('SIGTERM');
  expect(await exited(child)).toBe(0);

  const afterStop = await env.db.knex('rt_outbox').count<{ c: string }[]>({ c: '*' });
  expect(Number(afterStop[0]!.c)).toBe(0);
  const handledBefore = Number(
    (await env.db.knex('rt_inbox').count<{ c: string }[]>({ c: '*' }))[0]!.c,
  );
  expect(handledBefore).toBeLessThan(KEYS * PER_KEY);

  const outcomes: Outcome['kind'][] = [];
  const next = demoWorker(env, {
    onSettled: (_p, o) => outcomes.push(o.kind),
  });
  await next.start();
  await eventually('the rest handled', async () => {
    const s = await demoStates(env.db);
    return s.size === KEYS && [...s.values()].every((x) => x.count === PER_KEY);
  });
  await next.stop();
  // Everything the first worker committed it also acked: nothing came back as a duplicate.
  expect(outcomes.filter((k) => k === 'duplicate')).toEqual([]);
  expect(outcomes.length).toBe(KEYS * PER_KEY - handledBefore);
  for (const s of (await demoStates(env.db)).values()) expect(s.outOfOrder).toBe(0);
});
