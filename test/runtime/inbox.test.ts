/** Inbox retention: entries older than the cutoff are forgotten, newer ones kept. */
import { afterAll, beforeAll, expect, it } from 'vitest';
import { COMMAND_RETENTION_MS, Streams, commandStream } from '../../contracts/index.ts';
import { pruneInbox } from '../../actors/runtime/outbox.ts';
import { startRuntimeEnv, type RuntimeEnv } from '../support/runtime-env.ts';

let env: RuntimeEnv;
beforeAll(async () => {
  env = await startRuntimeEnv();
});
afterAll(async () => {
  await env?.dispose();
});

it('prunes inbox entries older than the cutoff in bounded batches, keeping newer ones', async () => {
  const now = Date.parse('2026-06-01T00:00:00Z');
  const day = 24 * 3_600_000;
  const rows = Array.from({ length: 30 }, (_, i) => ({
    actor: 'demo',
    msg_id: `m${i}`,
    outcome: 'ok',
    handled_at: new Date(now - i * day),
  }));
  await env.db.knex('rt_inbox').insert(rows);
  const cutoff = new Date(now - 10.5 * day);
  expect(await pruneInbox(env.db.knex, cutoff, 7)).toBe(7);
  expect(await pruneInbox(env.db.knex, cutoff, 7)).toBe(7);
  expect(await pruneInbox(env.db.knex, cutoff, 7)).toBe(5);
  expect(await pruneInbox(env.db.knex, cutoff, 7)).toBe(0);
  const left = await env.db.knex('rt_inbox').select<{ msg_id: string }[]>('msg_id');
  expect(left.map((r) => r.msg_id).sort()).toEqual(
    Array.from({ length: 11 }, (_, i) => `m${i}`).sort(),
  );
});

it('keeps inbox entries at least as long as the command streams keep messages', () => {
  expect(commandStream('session').maxAgeMs).toBeLessThanOrEqual(COMMAND_RETENTION_MS);
  expect(Streams.dlq.maxAgeMs).toBeGreaterThan(0);
});
