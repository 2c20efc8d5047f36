/**
 * "Is the deployment idle?": what a step-by-step replay waits for between two recorded times,
 * so that everything the previous messages set off (routing, actor handling, allocator
 * decisions, Azure and Razorpay effects, timers due at this time) has finished before the
 * next messages go in, as it had in the recorded run.
 *
 * Idle means, read from the outside (no worker is asked):
 * - every durable consumer of every stream has nothing pending and nothing awaiting an ack
 *   (effects runners ack only when the effect is done, so an Azure create in flight counts);
 * - with a database: no outbox row left to publish, no timer due by the replay's time that
 *   has not fired, no parked retry due;
 * and the same twice in a row with no stream or consumer having moved in between, because
 * the consumers are read one after the other while messages flow from one to the next.
 *
 * Durable consumers nobody serves any more would never drain: name them in `ignore`.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import type { Knex } from 'knex';

export interface IdleReport {
  idle: boolean;
  /** What is still busy, e.g. `RESPAWN_SESSION_CMD/session-p07: 1 pending, 1 unacked`. */
  busy: string[];
  /** Stream and consumer positions: equal fingerprints mean nothing moved in between. */
  fingerprint: string;
}

export interface IdleProbe {
  /** `now` is the replay's current time (timers due by then must have fired). */
  check(now: Date): Promise<IdleReport>;
  /**
   * The earliest durable timer due after `after` and before `before`, if any: a step-by-step
   * replay moves the clock to it first, so timers fire at their own time, not at the next
   * message's. Needs the database.
   */
  nextTimer?(after: Date, before: Date): Promise<Date | undefined>;
}

export interface IdleProbeOptions {
  jsm: JetStreamManager;
  /** The target's PostgreSQL: outbox, due timers and parked retries are checked too. */
  knex?: Knex;
  /** Durable consumers not to wait for (`STREAM/consumer` or `consumer`), e.g. one nobody runs. */
  ignore?: readonly string[];
}

async function countOf(q: Knex.QueryBuilder): Promise<number> {
  const row = (await q.count({ n: '*' }).first()) as { n: string | number } | undefined;
  return Number(row?.n ?? 0);
}

export function deploymentIdleProbe(opts: IdleProbeOptions): IdleProbe {
  const ignored = new Set(opts.ignore ?? []);
  return {
    async check(now) {
      const busy: string[] = [];
      const marks: string[] = [];
      for await (const s of opts.jsm.streams.list()) {
        const stream = s.config.name;
        marks.push(`${stream}:${s.state.last_seq}`);
        if (s.state.consumer_count === 0) continue;
        for await (const c of opts.jsm.consumers.list(stream)) {
          // Ephemeral consumers are observers (an export, a test's reader), not the deployment.
          if (c.config.durable_name === undefined) continue;
          if (ignored.has(c.name) || ignored.has(`${stream}/${c.name}`)) continue;
          marks.push(`${stream}/${c.name}:${c.delivered.stream_seq}:${c.ack_floor.stream_seq}`);
          if (c.num_pending > 0 || c.num_ack_pending > 0) {
            busy.push(
              `${stream}/${c.name}: ${c.num_pending} pending, ${c.num_ack_pending} unacked`,
            );
          }
        }
      }
      if (opts.knex !== undefined) {
        const k = opts.knex;
        const outbox = await countOf(k('rt_outbox'));
        const timers = await countOf(
          k('rt_timer').whereNull('emitted_at').where('fire_at', '<=', now),
        );
        const parked = await countOf(k('rt_parked').where('next_attempt_at', '<=', now));
        if (outbox > 0) busy.push(`outbox: ${outbox} rows to publish`);
        if (timers > 0) busy.push(`timers: ${timers} due, not fired`);
        if (parked > 0) busy.push(`parked: ${parked} retries due`);
        marks.push(`db:${outbox}:${timers}:${parked}`);
      }
      return { idle: busy.length === 0, busy, fingerprint: marks.join(' ') };
    },
    ...(opts.knex === undefined
      ? {}
      : {
          async nextTimer(after: Date, before: Date): Promise<Date | undefined> {
            const row = (await opts.knex!('rt_timer')
              .whereNull('emitted_at')
              .where('fire_at', '>', after)
              .where('fire_at', '<', before)
              .min({ at: 'fire_at' })
              .first()) as { at: string | Date | null } | undefined;
            return row?.at === null || row?.at === undefined ? undefined : new Date(row.at);
          },
        }),
  };
}

export class IdleTimeoutError extends Error {
  constructor(
    readonly busy: readonly string[],
    timeoutMs: number,
  ) {
    super(
      `the deployment did not become idle within ${timeoutMs} ms; still busy: ${busy.slice(0, 5).join('; ') || 'moving'}`,
    );
    this.name = 'IdleTimeoutError';
  }
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

/** Polls the probe until two consecutive checks are idle with nothing moved in between. */
export async function waitUntilIdle(
  probe: IdleProbe,
  now: Date,
  opts: { timeoutMs?: number; pollMs?: number; signal?: AbortSignal } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 120_000;
  const pollMs = opts.pollMs ?? 25;
  const deadline = Date.now() + timeoutMs;
  let previous: IdleReport | undefined;
  for (;;) {
    if (opts.signal?.aborted === true) return;
    const r = await probe.check(now);
    if (r.idle && previous?.idle === true && previous.fingerprint === r.fingerprint) return;
    previous = r;
    if (Date.now() > deadline) throw new IdleTimeoutError(r.busy, timeoutMs);
    await sleep(pollMs, opts.signal);
  }
}
