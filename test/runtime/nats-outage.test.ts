/**
 * nats-server killed under a worker (the real entry point, `actors/main.ts`) and down for
 * seconds, then started again on its store: the worker stays alive and says it is not ready
 * (naming NATS), reconnects by itself, and every command (those stored before the crash and
 * those published after) is applied exactly once, in order, with one event each; nothing is
 * dead-lettered. Its log says so in a few lines, not one per round.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Streams } from '../../contracts/index.ts';
import { freePort } from '../../deploy/local/nats.ts';
import {
  addedEvents,
  demoStates,
  eventually,
  killWorker,
  publishAdds,
  readWorkerLog,
  spawnWorker,
  startRuntimeEnv,
  workerReadyz,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let worker: ChildProcess | undefined;

beforeEach(async () => {
  env = await startRuntimeEnv();
});
afterEach(async () => {
  await killWorker(worker);
  worker = undefined;
  await env.dispose();
});

it('keeps every command through a nats-server crash and applies each once, in order, when it is back', async () => {
  const keys = ['nc-a', 'nc-b', 'nc-c', 'nc-d'];
  const port = await freePort();
  worker = spawnWorker(env, { RESPAWN_HTTP_PORT: String(port), LOG_LEVEL: 'info' }, true);
  const log = readWorkerLog(worker);
  await eventually(
    'the worker ready',
    async () => (await workerReadyz(port).catch(() => null))?.status === 200,
  );
  await Promise.all(keys.map((k) => publishAdds(env.js, k, 1, 20)));
  await eventually('the first commands applied', async () => {
    const s = await demoStates(env.db);
    return keys.every((k) => s.get(k)?.lastN === 20);
  });

  // Stored, then the server crashes at once: some are handled before, the rest after.
  await Promise.all(keys.map((k) => publishAdds(env.js, k, 21, 60)));
  const crashAt = log.lines.length;
  const restarted = env.nats.restart(8_000);
  await eventually(
    'the worker not ready, naming NATS',
    async () => {
      const r = await workerReadyz(port);
      return r.status === 503 && r.body.checks?.nats?.ok === false;
    },
    7_000,
  );
  expect(worker.exitCode).toBeNull();
  await restarted;
  const backAt = log.lines.length;
  // This test's own connection reconnects too; the same ids again are de-duplicated.
  await eventually('commands published after the restart', () =>
    Promise.all(keys.map((k) => publishAdds(env.js, k, 61, 80))).then(
      () => true,
      () => false,
    ),
  );
  await eventually(
    'every command applied after the server came back',
    async () => {
      const s = await demoStates(env.db);
      return keys.every((k) => s.get(k)?.lastN === 80);
    },
    60_000,
  );
  const after = await demoStates(env.db);
  for (const k of keys) {
    expect(after.get(k)).toMatchObject({ lastN: 80, count: 80, total: 80, outOfOrder: 0 });
  }
  await eventually(
    'one event per command',
    async () => (await addedEvents(env.js, env.jsm)).length >= 320,
  );
  const events = await addedEvents(env.js, env.jsm);
  expect(events.length).toBe(320);
  expect(new Set(events.map((e) => `${e.key}:${e.n}`)).size).toBe(320);
  expect((await env.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(0);
  await eventually('the worker ready again', async () => (await workerReadyz(port)).status === 200);

  // 8 s down: a few warnings (publishes left to the outbox sweeper, a sweep that failed), each
  // a JSON line; no line per round of a loop.
  const outage = log.lines.slice(crashAt, backAt).filter((l) => l.level >= 40);
  expect(outage.length).toBeGreaterThan(0);
  expect(outage.length).toBeLessThanOrEqual(10);
  expect(log.plain).toEqual([]);
}, 120_000);
