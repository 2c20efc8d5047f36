/**
 * Replaying recorded ingress into a deployment (`npm run replay -- play`, `npm run bench:load`).
 *
 * Pacing: `original` keeps the recorded gaps, `factor` divides them, `max` sends as fast as
 * the target takes them (one at a time, in file order, so one player's inputs stay in order).
 * With a `clock`, the target's replay clock is moved to each message's recorded time before
 * the message is sent, and while a paced replay waits it is moved along with the waiting, so
 * timers fall due as they did in the recording.
 *
 * `step` makes the outcome reproducible (docs/replay.md): messages are sent in groups of
 * equal recorded time and source; before a group the clock moves to its time and the replay waits until
 * the deployment is idle (so timers due by then have fired and been handled), then sends the
 * group and waits until idle again. With the clock and a probe that sees the database, the
 * clock also stops at each durable timer due between two groups, so a timer fires at its own
 * time rather than at the next message's. The recorded run must have been driven the same way for
 * its outcome to be reproduced exactly (test/replay/deterministic.test.ts).
 *
 * Errors (a send the target refused, a deployment that did not settle) are counted and
 * reported with the message's line, never thrown.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { ReplayClock } from './clock.ts';
import type { RecordedMessage } from './format.ts';
import { waitUntilIdle, type IdleProbe } from './idle.ts';
import { lineOf } from './read.ts';
import { httpSender, streamSender, type HttpSecrets, type Sender } from './send.ts';

export type { ReplayClock } from './clock.ts';

export type ReplayTarget =
  | { kind: 'stream'; nc: NatsConnection }
  | { kind: 'http'; gatewayUrl: string; secrets: HttpSecrets };

export type ReplaySpeed =
  | { mode: 'original' }
  | { mode: 'factor'; factor: number }
  | { mode: 'max' };

export interface ReplayProgress {
  sent: number;
  total: number | undefined;
  errors: number;
  ratePerS: number;
  etaS: number | undefined;
  recordedTime: string;
}

export interface ReplaySummary {
  sent: number;
  errors: number;
  wallMs: number;
  recordedSpanMs: number;
  /** Sent, but the target already had them (same Nats-Msg-Id within the window). */
  duplicates: number;
}

export interface ReplayError {
  /** The file line, when the message came from `openRecording`. */
  line: number | undefined;
  seq: number;
  subject: string;
  reason: string;
}

export interface ReplayStep {
  idle: IdleProbe;
  /** Longest wait for the deployment to settle (default 120 s); then an error, and on. */
  timeoutMs?: number;
  pollMs?: number;
  /** Called at each new recorded time once the deployment is idle, before its messages. */
  onStep?: (at: Date) => Promise<void>;
}

export interface ReplayOptions {
  target: ReplayTarget;
  speed: ReplaySpeed;
  messages: AsyncIterable<RecordedMessage>;
  total?: number;
  clock?: ReplayClock;
  onProgress?: (p: ReplayProgress) => void;
  signal?: AbortSignal;
  onError?: (e: ReplayError) => void;
  step?: ReplayStep;
  /** Least time between two progress reports (default 250 ms); the last one always comes. */
  progressEveryMs?: number;
  /** How often a paced replay moves the clock while it waits (default 250 ms). */
  clockTickMs?: number;
}

/** `original`, `max`, `10x`, `2.5x` (case-insensitive); undefined when it is none of those. */
export function parseSpeed(text: string): ReplaySpeed | undefined {
  const s = text.trim().toLowerCase();
  if (s === 'original' || s === '1x') return { mode: 'original' };
  if (s === 'max') return { mode: 'max' };
  const m = /^(\d+(?:\.\d+)?)x$/.exec(s);
  const factor = Number(m?.[1]);
  return m !== null && Number.isFinite(factor) && factor > 0
    ? { mode: 'factor', factor }
    : undefined;
}

export function senderFor(target: ReplayTarget): Sender {
  return target.kind === 'stream'
    ? streamSender(target.nc)
    : httpSender(target.gatewayUrl, target.secrets);
}

const sleep = (ms: number, signal?: AbortSignal): Promise<void> =>
  new Promise((resolve) => {
    if (ms <= 0 || signal?.aborted === true) {
      resolve();
      return;
    }
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export async function replay(opts: ReplayOptions): Promise<ReplaySummary> {
  const send = senderFor(opts.target);
  const factor =
    opts.speed.mode === 'max' ? undefined : opts.speed.mode === 'factor' ? opts.speed.factor : 1;
  const tickMs = opts.clockTickMs ?? 250;
  const everyMs = opts.progressEveryMs ?? 250;
  const started = performance.now();
  let sent = 0;
  let errors = 0;
  let duplicates = 0;
  let firstT: number | undefined;
  let lastT: number | undefined;
  /** The recorded time of the group being sent (step mode and the clock). */
  let groupT: number | undefined;
  let groupSource: string | undefined;
  let lastReport = Number.NEGATIVE_INFINITY;
  const aborted = (): boolean => opts.signal?.aborted === true;

  const report = (force: boolean): void => {
    if (opts.onProgress === undefined) return;
    const now = performance.now();
    if (!force && now - lastReport < everyMs) return;
    lastReport = now;
    const elapsedS = (now - started) / 1000;
    const ratePerS = elapsedS > 0 ? sent / elapsedS : 0;
    const remaining = opts.total === undefined ? undefined : opts.total - sent - errors;
    opts.onProgress({
      sent,
      total: opts.total,
      errors,
      ratePerS,
      etaS:
        remaining === undefined || ratePerS === 0 ? undefined : Math.max(0, remaining / ratePerS),
      recordedTime: lastT === undefined ? '' : new Date(lastT).toISOString(),
    });
  };
  const fail = (m: RecordedMessage | undefined, reason: string): void => {
    errors++;
    opts.onError?.({
      line: m === undefined ? undefined : lineOf(m),
      seq: m?.seq ?? 0,
      subject: m?.subject ?? '',
      reason,
    });
  };
  const settle = async (at: number, next: RecordedMessage | undefined): Promise<void> => {
    if (opts.step === undefined) return;
    try {
      await waitUntilIdle(opts.step.idle, new Date(at), {
        ...(opts.step.timeoutMs === undefined ? {} : { timeoutMs: opts.step.timeoutMs }),
        ...(opts.step.pollMs === undefined ? {} : { pollMs: opts.step.pollMs }),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
    } catch (err) {
      fail(next, errorText(err));
    }
  };
  /** Step mode: visits each durable timer's due time between two recorded times, in order. */
  const timersUpTo = async (from: number, to: number, m: RecordedMessage): Promise<void> => {
    const probe = opts.step?.idle;
    if (probe?.nextTimer === undefined || opts.clock === undefined) return;
    let at = from;
    for (;;) {
      if (aborted()) return;
      let due: Date | undefined;
      try {
        due = await probe.nextTimer(new Date(at), new Date(to));
      } catch (err) {
        fail(m, `cannot read due timers: ${errorText(err)}`);
        return;
      }
      if (due === undefined || due.getTime() <= at) return;
      at = due.getTime();
      await setClock(at, m);
      await settle(at, m);
    }
  };
  const setClock = async (at: number, m: RecordedMessage): Promise<void> => {
    if (opts.clock === undefined) return;
    try {
      await opts.clock.set(new Date(at));
    } catch (err) {
      fail(m, `replay clock not moved to ${new Date(at).toISOString()}: ${errorText(err)}`);
    }
  };

  for await (const m of opts.messages) {
    if (aborted()) break;
    // Lines are in time order; one that is not is sent at the time already reached.
    const t = Math.max(Date.parse(m.time), lastT ?? Number.NEGATIVE_INFINITY);
    firstT ??= t;
    if (factor !== undefined) {
      const due = started + (t - firstT) / factor;
      for (let now = performance.now(); now < due; now = performance.now()) {
        if (aborted()) break;
        if (opts.clock !== undefined && groupT !== undefined && opts.step === undefined) {
          await setClock(Math.min(t, firstT + (now - started) * factor), m);
        }
        report(false);
        await sleep(Math.min(tickMs, due - now), opts.signal);
      }
      if (aborted()) break;
    }
    lastT = t;
    if (t === groupT && m.source !== groupSource) {
      // Same time, another source: what the last source's messages set off settles first,
      // as separate ingress routers would otherwise interleave them at random.
      await settle(t, m);
    }
    groupSource = m.source;
    if (t !== groupT) {
      if (groupT !== undefined) {
        await settle(groupT, m);
        await timersUpTo(groupT, t, m);
      }
      await setClock(t, m);
      await settle(t, m);
      if (opts.step?.onStep !== undefined) {
        try {
          await opts.step.onStep(new Date(t));
        } catch (err) {
          fail(m, `step hook failed: ${errorText(err)}`);
        }
      }
      groupT = t;
    }
    const r = await send(m);
    if (r.ok) {
      sent++;
      if (r.duplicate) duplicates++;
    } else {
      fail(m, r.reason);
    }
    report(false);
  }
  if (groupT !== undefined && opts.signal?.aborted !== true) await settle(groupT, undefined);
  report(true);
  return {
    sent,
    errors,
    duplicates,
    wallMs: Math.round(performance.now() - started),
    recordedSpanMs: firstT === undefined || lastT === undefined ? 0 : lastT - firstT,
  };
}
