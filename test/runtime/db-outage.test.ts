/**
 * PostgreSQL unreachable for a worker (the real entry point, `actors/main.ts`) while commands
 * keep arriving: JetStream keeps them, the worker stays alive and says it is not ready (naming
 * PostgreSQL), nothing is dead-lettered or applied; once PostgreSQL is back every command is
 * applied exactly once, in order, and the worker is ready again. Its log says so in a few lines:
 * each failing loop once when it starts failing and once when it works again, not every round.
 * The outage is a TCP relay cut for this worker alone (test/support/tcp-relay.ts); the shared
 * server keeps running.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { Streams } from '../../contracts/index.ts';
import { freePort } from '../../deploy/local/nats.ts';
import {
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
import { tcpRelay, type TcpRelay } from '../support/tcp-relay.ts';

let env: RuntimeEnv;
let relay: TcpRelay;
let worker: ChildProcess | undefined;

beforeEach(async () => {
  env = await startRuntimeEnv();
  const u = new URL(env.database.url);
  relay = await tcpRelay({ host: u.hostname, port: Number(u.port || 5432) });
});
afterEach(async () => {
  await killWorker(worker);
  worker = undefined;
  await relay.close();
  await env.dispose();
});

it('keeps every command through a PostgreSQL outage and applies each once, in order, when it is back', async () => {
  const keys = ['pg-a', 'pg-b', 'pg-c', 'pg-d'];
  const port = await freePort();
  worker = spawnWorker(
    env,
    {
      DATABASE_URL: relay.via(env.database.url),
      RESPAWN_HTTP_PORT: String(port),
      LOG_LEVEL: 'info',
    },
    true,
  );
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

  const cutAt = log.lines.length;
  await relay.cut();
  // JetStream takes commands as before; the worker cannot commit them.
  await Promise.all(keys.map((k) => publishAdds(env.js, k, 21, 60)));
  await eventually(
    'the worker not ready, naming PostgreSQL',
    async () => {
      const r = await workerReadyz(port);
      return r.status === 503 && r.body.checks?.postgres?.ok === false;
    },
    15_000,
  );
  await new Promise((r) => setTimeout(r, 8_000));
  expect(worker.exitCode).toBeNull();
  const during = await demoStates(env.db);
  for (const k of keys) expect(during.get(k)).toMatchObject({ lastN: 20, count: 20 });
  expect((await env.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(0);

  const restoredAt = log.lines.length;
  await relay.restore();
  await eventually(
    'every command applied after PostgreSQL came back',
    async () => {
      const s = await demoStates(env.db);
      return keys.every((k) => s.get(k)?.lastN === 60);
    },
    60_000,
  );
  const after = await demoStates(env.db);
  for (const k of keys) {
    // count: each add applied once; outOfOrder: each was n = lastN + 1 when applied.
    expect(after.get(k)).toMatchObject({ lastN: 60, count: 60, total: 60, outOfOrder: 0 });
  }
  expect((await env.jsm.streams.info(Streams.dlq.name)).state.messages).toBe(0);
  await eventually('the worker ready again', async () => (await workerReadyz(port)).status === 200);

  // ~10 s of outage with loops every 200-2,000 ms: one warning per loop, and one line each
  // once it works again (the first sweep after the relay came back).
  const outage = log.lines.slice(cutAt, restoredAt).filter((l) => l.level >= 40);
  const byMsg = new Map<string, number>();
  for (const l of outage) byMsg.set(l.msg, (byMsg.get(l.msg) ?? 0) + 1);
  expect(byMsg.get('parking drain failed')).toBe(1);
  expect(byMsg.get('timer sweep failed')).toBe(1);
  for (const [msg, n] of byMsg)
    if (/ (failed|still failing)$/.test(msg)) expect([msg, n]).toEqual([msg, 1]);
  expect(log.plain).toEqual([]);
  await eventually('the loops say they work again', () =>
    Promise.resolve(
      ['parking drain works again', 'timer sweep works again'].every((m) =>
        log.lines.some((l) => l.msg === m),
      ),
    ),
  );
}, 120_000);
