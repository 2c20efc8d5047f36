import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Worker } from '../../actors/runtime/index.ts';
import {
  demoStates,
  demoWorker,
  eventually,
  publishAdds,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

let env: RuntimeEnv;
let worker: Worker;
beforeAll(async () => {
  env = await startRuntimeEnv();
  worker = demoWorker(env);
  await worker.start();
});
afterAll(async () => {
  await worker?.stop();
  await env?.dispose();
});

it('applies each key’s messages in order, once', async () => {
  await Promise.all(Array.from({ length: 50 }, (_, k) => publishAdds(env.js, `k${k}`, 1, 10)));
  await eventually('all applied', async () => {
    const s = await demoStates(env.db);
    return s.size === 50 && [...s.values()].every((x) => x.count === 10);
  });
  const s = await demoStates(env.db);
  for (const x of s.values()) {
    expect(x.seen).toEqual([1, 2, 3, 4, 5, 6, 7, 8, 9, 10]);
    expect(x.outOfOrder).toBe(0);
  }
});
