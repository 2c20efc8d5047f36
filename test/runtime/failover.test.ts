/**
 * Failover: when a worker is killed with SIGKILL, every partition it was serving is served by
 * the surviving worker within 5 seconds, with no message lost or applied twice.
 */
import type { ChildProcess } from 'node:child_process';
import { afterEach, beforeEach, expect, it } from 'vitest';
import { partitionOf, PARTITIONS } from '../../contracts/index.ts';
import {
  demoStates,
  eventually,
  exited,
  publishAdds,
  spawnWorker,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let workers: ChildProcess[] = [];
beforeEach(async () => {
  env = await startRuntimeEnv();
});
afterEach(async () => {
  for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await Promise.all(workers.map((w) => exited(w)));
  workers = [];
  await env.dispose();
});

/** One key per partition, so every partition has work. */
function keyPerPartition(): string[] {
  const byPartition = new Map<number, string>();
  for (let i = 0; byPartition.size < PARTITIONS; i++) {
    const k = `fo${i}`;
    if (!byPartition.has(partitionOf(k))) byPartition.set(partitionOf(k), k);
  }
  return [...byPartition.values()];
}

it('moves a killed worker’s partitions to the survivor within 5 seconds', async () => {
  const keys = keyPerPartition();
  workers = [spawnWorker(env), spawnWorker(env)];
  const [victim] = workers as [ChildProcess, ChildProcess];
  let n = 0;
  let publishing = true;
  const publisher = (async () => {
    while (publishing) {
      n++;
      await Promise.all(keys.map((k) => publishAdds(env.js, k, n, n)));
      await new Promise((r) => setTimeout(r, 25));
    }
  })();
  await eventually('both workers serving', async () => {
    const s = await demoStates(env.db);
    return s.size === keys.length && [...s.values()].every((x) => x.count >= 20);
  });
  const killedAt = new Date();
  victim.kill('SIGKILL');
  await new Promise((r) => setTimeout(r, 8_000));
  publishing = false;
  await publisher;
  const last = n;
  await eventually('everything handled by the survivor', async () => {
    const s = await demoStates(env.db);
    return [...s.values()].every((x) => x.lastN === last);
  });

  // Per key: the first message handled after the kill; the slowest key is the takeover time.
  const rows = (
    await env.db.knex.raw<{ rows: { k: string; first: Date }[] }>(
      `select split_part(msg_id, '-', 2) as k, min(handled_at) as first from rt_inbox
       where actor = 'demo' and handled_at > ? group by 1`,
      [killedAt],
    )
  ).rows;
  const firstAfter = rows.map((r) => new Date(r.first).getTime() - killedAt.getTime());
  expect(firstAfter.length).toBe(keys.length);
  const takeoverMs = Math.max(...firstAfter);
  console.log(`slowest partition served again ${takeoverMs} ms after kill -9`);
  expect(takeoverMs).toBeLessThan(5_000);

  for (const s of (await demoStates(env.db)).values()) {
    expect(s.outOfOrder).toBe(0);
    expect(s.count).toBe(last);
    expect(s.version).toBe(last);
  }
});
