/** The operators' dead-letter tool (`npm run dlq`) against a real server: list, then re-inject. */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { ActorKinds, cmdSubject } from '../../contracts/index.ts';
import { listDeadLetters, type Worker } from '../../actors/runtime/index.ts';
import {
  demoWorker,
  eventually,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

const run = promisify(execFile);
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

const dlq = (...args: string[]) =>
  run(process.execPath, ['--import', 'tsx', 'deploy/dlq.ts', ...args], {
    env: { ...process.env, NATS_URL: env.nats.url },
  });

it('lists dead letters with their reasons and re-injects one to its original subject', async () => {
  await env.js.publish(
    cmdSubject(ActorKinds.demo, 'ops1', 'add'),
    new TextEncoder().encode('{"type":"demo.add.v1"}'),
    { msgID: 'ops-bad' },
  );
  await eventually('dead-lettered', async () => (await listDeadLetters(env.jsm)).length === 1);
  const listed = await dlq('list', '--prefix', 'respawn.dlq.demo');
  expect(listed.stdout).toMatch(
    /invalid_payload\trespawn\.demo\.ops1\.cmd\.add\.\d+\tinvalid demo\.add\.v1/,
  );
  expect(listed.stdout).toContain('1 dead letter(s)');
  const [dl] = await listDeadLetters(env.jsm);
  const first = await dlq('reinject', String(dl!.seq));
  expect(first.stdout.trim()).toBe(`${dl!.seq} -> respawn.demo.ops1.cmd.add`);
  const again = await dlq('reinject', String(dl!.seq));
  expect(again.stdout).toContain('already re-injected');
  // Still invalid, so it is dead-lettered again: once, whatever the number of re-injections.
  await eventually(
    're-injected and dead-lettered again',
    async () => (await listDeadLetters(env.jsm)).length === 2,
  );
  const missing = await dlq('reinject', '999').catch((e: { code: number; stderr: string }) => e);
  expect('code' in missing ? missing.code : 0).toBe(1);
  expect(missing.stderr).toContain('no dead letter with sequence 999');
});
