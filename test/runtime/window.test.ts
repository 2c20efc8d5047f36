/**
 * Windowed partitions (contracts/streams.ts PARTITION_WINDOWS, actors/runtime/ownership.ts):
 * one hot key whose consumer hands out many deliveries at once, as the allocator's region
 * does. Real worker processes with `RESPAWN_PARTITION_WINDOWS=demo=64`: the hot key's
 * messages are applied in publish order, each exactly once, many per transaction, while the
 * owning worker is killed with SIGKILL or paused with SIGSTOP and another takes over.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChildProcess } from 'node:child_process';
import {
  ActorKinds,
  commandStreamName,
  partitionConsumerName,
  partitionOf,
} from '../../contracts/index.ts';
import { PULL_FAILING_REPORT_MS } from '../../actors/runtime/windowed.ts';
import {
  addedEvents,
  demoStates,
  eventually,
  exited,
  publishAdds,
  readWorkerLog,
  spawnWorker,
  startRuntimeEnv,
  type RuntimeEnv,
} from '../support/runtime-env.ts';

const HOT = 'hot';
const TOTAL = 3_000;
const WINDOWED = { RESPAWN_PARTITION_WINDOWS: 'demo=64' };

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

async function handled(): Promise<number> {
  const r = await env.db
    .knex('rt_inbox')
    .count<{ c: string }[]>({ c: '*' })
    .where({ actor: 'demo' });
  return Number(r[0]?.c ?? 0);
}

/** Live partition leases by owner. */
async function leaseOwners(): Promise<Map<string, number>> {
  const r = await env.db.knex.raw<{ rows: { owner: string; c: string }[] }>(
    `select owner, count(*) as c from rt_lease
      where expires_at > now() and name like 'partition.demo.%' group by owner`,
  );
  const rows = r.rows;
  return new Map(rows.map((r) => [r.owner, Number(r.c)]));
}

/** Publishes n = from..TOTAL to the hot key in chunks, so it goes on during a fault. */
async function publishHot(from: number): Promise<void> {
  for (let n = from; n <= TOTAL; n += 100)
    await publishAdds(env.js, HOT, n, Math.min(TOTAL, n + 99));
}

async function expectHotInOrderOnce(): Promise<void> {
  await eventually('every hot message handled', async () => (await handled()) >= TOTAL, 90_000);
  const hot = (await demoStates(env.db)).get(HOT);
  expect(hot).toBeDefined();
  expect({ count: hot!.count, outOfOrder: hot!.outOfOrder, lastN: hot!.lastN }).toEqual({
    count: TOTAL,
    outOfOrder: 0,
    lastN: TOTAL,
  });
  // Many messages per transaction: one state write (version) per batch, not per message.
  expect(hot!.version).toBeLessThan(TOTAL / 2);
  await eventually('every emitted event published', async () => {
    const r = await env.db.knex('rt_outbox').count<{ c: string }[]>({ c: '*' });
    return Number(r[0]?.c ?? 0) === 0;
  });
  const ns = (await addedEvents(env.js, env.jsm)).filter((e) => e.key === HOT).map((e) => e.n);
  expect(ns.length).toBe(TOTAL);
  expect(new Set(ns).size).toBe(TOTAL);
}

/** Who holds the hot key's partition now. */
async function hotOwner(): Promise<string | undefined> {
  const r = await env.db
    .knex('rt_lease')
    .select<{ owner: string }[]>('owner')
    .where({ name: `partition.demo.${partitionOf(HOT)}` })
    .andWhereRaw('expires_at > now()');
  return r[0]?.owner;
}

/**
 * Two workers: the first takes every partition, then hands half back to the second (balance).
 * Returns the process holding the hot key's partition once they share, and its owner id.
 */
async function twoSharing(): Promise<{ proc: ChildProcess; id: string }> {
  const firstProc = spawnWorker(env, WINDOWED);
  workers.push(firstProc);
  const first = await ownerStarted();
  const secondProc = spawnWorker(env, WINDOWED);
  workers.push(secondProc);
  await eventually(
    'the two workers share the partitions evenly',
    async () => {
      const owners = await leaseOwners();
      return owners.size === 2 && [...owners.values()].every((c) => c === 32);
    },
    30_000,
  );
  const id = (await hotOwner())!;
  return { proc: id === first ? firstProc : secondProc, id };
}

async function ownerStarted(): Promise<string> {
  let owner = '';
  await eventually('the first worker owns every windowed partition', async () => {
    const owners = await leaseOwners();
    const [entry] = [...owners.entries()];
    owner = entry?.[0] ?? '';
    return owners.size === 1 && entry?.[1] === 64;
  });
  return owner;
}

describe('a hot key on a windowed partition, two worker processes', () => {
  it('stays in order and exactly once when the owner is killed with SIGKILL', async () => {
    const owner = await twoSharing();
    const publishing = publishHot(1);
    await eventually('a quarter handled', async () => (await handled()) >= TOTAL / 4, 60_000);
    owner.proc.kill('SIGKILL');
    const killedAt = Date.now();
    const before = await handled();
    await eventually(
      'another worker goes on',
      async () => (await handled()) > before + 100,
      30_000,
    );
    const takeoverMs = Date.now() - killedAt;
    await publishing;
    await expectHotInOrderOnce();
    // The survivor holds every partition again: its share grew when the member lease expired.
    const owners = await leaseOwners();
    expect(owners.has(owner.id)).toBe(false);
    expect([...owners.values()]).toEqual([64]);
    console.log(`windowed partition taken over ${takeoverMs} ms after kill -9`);
    // Lease expiry (4 s) + ack_wait (3 s) + a renewal period, with room for a loaded machine.
    expect(takeoverMs).toBeLessThan(20_000);
  });

  it('a paused owner loses its partitions and, resumed, neither doubles nor reorders', async () => {
    const owner = await twoSharing();
    const publishing = publishHot(1);
    await eventually('a quarter handled', async () => (await handled()) >= TOTAL / 4, 60_000);
    owner.proc.kill('SIGSTOP');
    const before = await handled();
    await eventually(
      'another worker goes on',
      async () => (await handled()) > before + 100,
      30_000,
    );
    expect((await leaseOwners()).has(owner.id)).toBe(false);
    owner.proc.kill('SIGCONT');
    await publishing;
    await expectHotInOrderOnce();
    // Resumed, it rejoins (a new member lease) and gets its share back.
    await eventually(
      'the resumed worker shares again',
      async () => [...(await leaseOwners()).values()].join() === '32,32',
      30_000,
    );
  });

  it('hands half of the partitions to a worker that joins, and all back when one stops', async () => {
    const first = spawnWorker(env, WINDOWED);
    workers.push(first);
    await ownerStarted();
    const publishing = publishHot(1);
    await eventually('some handled', async () => (await handled()) >= 200, 60_000);
    workers.push(spawnWorker(env, WINDOWED));
    await eventually(
      'the joiner gets half',
      async () => [...(await leaseOwners()).values()].join() === '32,32',
      30_000,
    );
    await publishing;
    await expectHotInOrderOnce();
    // A graceful stop hands its partitions back at once: the other takes them all.
    first.kill('SIGTERM');
    await exited(first);
    await eventually(
      'the remaining worker holds every partition',
      async () => [...(await leaseOwners()).values()].join() === '64',
      15_000,
    );
  });
});

describe('a windowed partition whose pulls keep failing', () => {
  it('is reported once, naming its consumer, after failing for a while; other partitions are not', async () => {
    const proc = spawnWorker(env, { ...WINDOWED, LOG_LEVEL: 'info' }, true);
    workers.push(proc);
    const log = readWorkerLog(proc);
    await ownerStarted();
    await eventually('partition 3 is pulled', () =>
      Promise.resolve(
        log.lines.some(
          (l) =>
            l.msg === 'owning windowed partition' &&
            (l as { partition?: string }).partition === 'partition.demo.3',
        ),
      ),
    );
    const consumer = partitionConsumerName(ActorKinds.demo, 3);
    await env.jsm.consumers.delete(commandStreamName(ActorKinds.demo), consumer);
    const deleted = Date.now();
    const before = log.lines.length;
    const failed = () => log.lines.filter((l) => l.msg === 'pulling partition commands failed');
    await eventually('the failing pulls are reported', () => Promise.resolve(failed().length > 0));
    expect(Date.now() - deleted).toBeGreaterThanOrEqual(PULL_FAILING_REPORT_MS);
    const [line] = failed();
    expect(line).toMatchObject({ level: 40, consumer, partition: 'partition.demo.3' });
    // A while later: still one line, and the other 63 partitions said nothing.
    await new Promise((r) => setTimeout(r, 5_000));
    expect(failed()).toHaveLength(1);
    expect(log.lines.slice(before).filter((l) => l.level >= 40)).toHaveLength(1);
  });
});
