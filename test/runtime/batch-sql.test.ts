/**
 * The batch's two statements (actors/runtime/batch-sql.ts) against a real PostgreSQL: what a
 * read sees, what a write leaves, and that a stale state is not written.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Knex } from 'knex';
import {
  readBatch,
  readStatement,
  writeBatch,
  writeStatement,
  type Statement,
  type WriteInput,
} from '../../actors/runtime/batch-sql.ts';
import { pairKey } from '../../actors/runtime/rows.ts';
import { startRuntimeEnv, type RuntimeEnv } from '../support/runtime-env.ts';

let env: RuntimeEnv;
beforeAll(async () => {
  env = await startRuntimeEnv();
});
afterAll(async () => {
  await env?.dispose();
});
beforeEach(async () => {
  const k = env.db.knex;
  await Promise.all(
    ['rt_state', 'rt_inbox', 'rt_outbox', 'rt_timer', 'rt_parked'].map((t) => k(t).delete()),
  );
});

const now = new Date('2026-11-26T10:00:00.000Z');
const write = (w: Partial<WriteInput>): WriteInput => ({
  now,
  states: [],
  inbox: [],
  firedTimers: [],
  timerCancels: [],
  timerSets: [],
  outbox: [],
  published: [],
  ...w,
});

const inTx = <T>(body: (trx: Knex.Transaction) => Promise<T>): Promise<T> =>
  env.db.knex.transaction(body);

describe('a batch', () => {
  it('reads what it wrote: state, inbox, live timers and parking lots', async () => {
    const ids = await inTx(async (tx) => {
      await readBatch(tx, { ids: [], timers: [], keys: [['demo', 'k1']], live: [] });
      return writeBatch(
        tx,
        write({
          states: [{ actor: 'demo', key: 'k1', version: 1, state: { n: 1, s: "it's \\ \u00e9" } }],
          inbox: [{ actor: 'demo', msgId: 'm1', outcome: 'ok' }],
          timerSets: [
            { actor: 'demo', key: 'k1', name: 'a', at: now, data: undefined, trace: null },
            { actor: 'demo', key: 'k1', name: 'b', at: now, data: { x: 1 }, trace: null },
          ],
          outbox: [1, 2, 3].map((i) => ({
            subject: `s.${i}`,
            msg_type: 't',
            headers: { h: String(i) },
            data: new Uint8Array([i, 0, 255]),
          })),
        }),
      );
    });
    const rows = await env.db
      .knex('rt_outbox')
      .select<{ id: string; subject: string; headers: unknown; data: Buffer }[]>()
      .orderBy('id');
    expect(ids.outboxIds).toEqual(rows.map((r) => String(r.id)));
    expect(rows.map((r) => [r.subject, r.headers, [...r.data]])).toEqual(
      [1, 2, 3].map((i) => [`s.${i}`, { h: String(i) }, [i, 0, 255]]),
    );
    const timers = await env.db
      .knex('rt_timer')
      .select<{ id: string; name: string; data: unknown }[]>()
      .orderBy('name');
    expect(timers.map((t) => [t.name, t.data])).toEqual([
      ['a', null],
      ['b', { x: 1 }],
    ]);
    await env.db.knex('rt_timer').update({ emitted_at: now }).where({ name: 'a' });
    await env.db.knex('rt_parked').insert({
      actor: 'demo',
      key: 'k2',
      msg_id: 'p1',
      subject: 'x',
      stream: 'x',
      stream_seq: 1,
      headers: '{}',
      data: Buffer.from([]),
      attempts: 0,
      next_attempt_at: now,
      last_error: 'e',
      parked_at: now,
    });

    const read = await inTx((tx) =>
      readBatch(tx, {
        ids: [
          ['demo', 'm1'],
          ['demo', 'm2'],
        ],
        timers: timers.map((t) => String(t.id)),
        keys: [
          ['demo', 'k1'],
          ['demo', 'k2'],
        ],
        live: [
          ['demo', 'k1'],
          ['demo', 'k2'],
        ],
      }),
    );
    expect(read).toEqual({
      seen: new Set([pairKey('demo', 'm1')]),
      // Only the emitted one: `b` was not fired yet.
      liveTimers: new Set([String(timers[0]!.id)]),
      states: new Map([
        [pairKey('demo', 'k1'), { version: 1, state: { n: 1, s: "it's \\ \u00e9" } }],
      ]),
      unchanged: new Set(),
      parked: new Set([pairKey('demo', 'k2')]),
    });

    // A caller that holds k1 at its current version gets only the version back; one that
    // holds an older version gets the state.
    const keys: [string, string][] = [['demo', 'k1']];
    const held = await inTx((tx) =>
      readBatch(tx, { ids: [], timers: [], keys, live: [], cached: [['demo', 'k1', 1]] }),
    );
    expect(held.unchanged).toEqual(new Set([pairKey('demo', 'k1')]));
    expect(held.states.get(pairKey('demo', 'k1'))).toEqual({ version: 1, state: undefined });
    const old = await inTx((tx) =>
      readBatch(tx, { ids: [], timers: [], keys, live: [], cached: [['demo', 'k1', 0]] }),
    );
    expect(old.unchanged.size).toBe(0);
    // Both statements are prepared on the transaction's connection (planned once per connection).
    const prepared = await inTx(async (tx) => {
      await readBatch(tx, { ids: [], timers: [], keys, live: [] });
      await writeBatch(tx, write({ inbox: [{ actor: 'demo', msgId: 'm9', outcome: 'ok' }] }));
      const r = await tx.raw<{ rows: { name: string }[] }>(
        'select name from pg_prepared_statements order by name',
      );
      return r.rows.map((x) => x.name);
    });
    expect(prepared).toEqual(expect.arrayContaining(['rt_batch_read', 'rt_batch_write']));
    expect(old.states.get(pairKey('demo', 'k1'))?.state).toEqual({ n: 1, s: "it's \\ \u00e9" });
  });

  it('replaces a fired timer set again, deletes cancelled and fired ones and published rows', async () => {
    await env.db.knex('rt_timer').insert(
      ['again', 'cancel', 'fired'].map((name) => ({
        actor: 'demo',
        key: 'k',
        name,
        fire_at: now,
        emitted_at: now,
      })),
    );
    const before = await env.db.knex('rt_timer').select<{ id: string; name: string }[]>();
    const idOf = (n: string): string => String(before.find((t) => t.name === n)!.id);
    const [published] = await env.db
      .knex('rt_outbox')
      .insert({ subject: 's', msg_type: 't', headers: '{}', data: Buffer.from([1]) })
      .returning<{ id: string }[]>('id');
    const later = new Date(now.getTime() + 60_000);
    await inTx((tx) =>
      writeBatch(
        tx,
        write({
          firedTimers: [idOf('fired')],
          timerCancels: [{ actor: 'demo', key: 'k', name: 'cancel' }],
          timerSets: [
            { actor: 'demo', key: 'k', name: 'again', at: later, data: null, trace: { t: '1' } },
          ],
          published: [String(published!.id)],
        }),
      ),
    );
    const after = await env.db
      .knex('rt_timer')
      .select<
        { id: string; name: string; fire_at: Date; emitted_at: Date | null; trace: unknown }[]
      >();
    expect(after).toHaveLength(1);
    expect(after[0]!.name).toBe('again');
    expect(String(after[0]!.id)).not.toBe(idOf('again'));
    expect(new Date(after[0]!.fire_at).getTime()).toBe(later.getTime());
    expect(after[0]!.emitted_at).toBeNull();
    expect(after[0]!.trace).toEqual({ t: '1' });
    expect(await env.db.knex('rt_outbox').count<{ c: string }[]>({ c: '*' })).toEqual([{ c: '0' }]);
  });

  it('does not write a state another writer moved on, and says which', async () => {
    await env.db
      .knex('rt_state')
      .insert({ actor: 'demo', key: 'k', version: 2, state: '{}', updated_at: now });
    const r = await inTx(async (tx) => {
      await readBatch(tx, { ids: [], timers: [], keys: [['demo', 'k']], live: [] });
      return writeBatch(
        tx,
        write({
          // Read at version 1 by a writer that did not see version 2.
          states: [
            { actor: 'demo', key: 'k', version: 2, state: { stale: true } },
            { actor: 'demo', key: 'new', version: 1, state: { fresh: true } },
          ],
        }),
      );
    });
    expect(r.written).toEqual(new Set([pairKey('demo', 'new')]));
    expect(
      (await env.db.knex('rt_state').select('version', 'state').where({ key: 'k' }))[0],
    ).toEqual({ version: 2, state: {} });
  });

  it('reaches every runtime table through an index, never by reading all of it', async () => {
    // Every batch runs both statements: a sequential scan of rt_timer or rt_inbox costs in
    // proportion to all players' timers or all recent messages, on every batch. With
    // sequential scans priced out, the planner still picks one when the statement leaves it
    // no other way (as an OR of two IN lists did for the timer delete).
    interface PlanNode {
      'Node Type': string;
      'Relation Name'?: string;
      Plans?: PlanNode[];
    }
    const seqScans = (n: PlanNode): string[] => [
      ...(n['Node Type'] === 'Seq Scan' && n['Relation Name']?.startsWith('rt_') === true
        ? [n['Relation Name']]
        : []),
      ...(n.Plans ?? []).flatMap(seqScans),
    ];
    const explain = (st: Statement): Promise<string[]> =>
      inTx(async (tx) => {
        await tx.raw('set local enable_seqscan = off');
        const r = await tx.raw<{ rows: { 'QUERY PLAN': { Plan: PlanNode }[] }[] }>(
          `explain (format json) ${st.sql}`,
          st.bindings,
        );
        return seqScans(r.rows[0]!['QUERY PLAN'][0]!.Plan);
      });
    const read = readStatement({
      ids: [['demo', 'm1']],
      timers: ['1', '2'],
      keys: [['demo', 'k1']],
      live: [['demo', 'k1']],
      cached: [['demo', 'k1', 3]],
    });
    const written = writeStatement(
      write({
        states: [{ actor: 'demo', key: 'k1', version: 1, state: {} }],
        inbox: [{ actor: 'demo', msgId: 'm1', outcome: 'ok' }],
        firedTimers: ['1'],
        timerCancels: [{ actor: 'demo', key: 'k1', name: 'a' }],
        timerSets: [{ actor: 'demo', key: 'k1', name: 'b', at: now, data: null, trace: null }],
        outbox: [{ subject: 's', msg_type: 't', headers: {}, data: new Uint8Array([1]) }],
        published: ['7'],
      }),
    );
    expect(await explain(read)).toEqual([]);
    expect(await explain(written)).toEqual([]);
  });

  it('locks the batch’s rows without a copy of the whole parameter on each of them', async () => {
    // A row locked FOR UPDATE carries every other row of its join (for the re-check of a row
    // changed meanwhile). Joined to the statement's parameter, each of n locked rows carried
    // the n-message document: n² bytes sorted, spilled to disk for a few hundred keys.
    interface PlanNode {
      'Node Type': string;
      Output?: string[];
      Plans?: PlanNode[];
    }
    const carried = (n: PlanNode, underLock: boolean): string[] => {
      const locking = underLock || n['Node Type'] === 'LockRows';
      return [
        ...(locking ? (n.Output ?? []).filter((o) => /^q(_\d+)?\.\*$/.test(o)) : []),
        ...(n.Plans ?? []).flatMap((c) => carried(c, locking)),
      ];
    };
    const keys = Array.from({ length: 300 }, (_, i): [string, string] => ['demo', `k${i}`]);
    await env.db.knex('rt_state').insert(
      keys.map(([actor, key]) => ({
        actor,
        key,
        version: 1,
        state: { pad: 'x'.repeat(500) },
        updated_at: now,
      })),
    );
    const st = readStatement({
      ids: keys.map(([a, k]) => [a, `m-${k}`]),
      timers: keys.map((_, i) => String(i + 1)),
      keys,
      live: keys,
    });
    const plan = await inTx(async (tx) => {
      const r = await tx.raw<{ rows: { 'QUERY PLAN': { Plan: PlanNode }[] }[] }>(
        `explain (verbose, format json) ${st.sql}`,
        st.bindings,
      );
      return r.rows[0]!['QUERY PLAN'][0]!.Plan;
    });
    expect(carried(plan, false)).toEqual([]);
    // And it still reads what it locked.
    const read = await inTx((tx) => readBatch(tx, { ids: [], timers: [], keys, live: keys }));
    expect(read.states.size).toBe(300);
  });
});
