/**
 * A role one process at a time plays, handed between processes through a lease (`lease.ts`):
 * any number may be started; the holder runs the role (consumes its durable consumer), the
 * others stand by and take over when it stops, crashes or is cut off.
 *
 * - Holding: the lease is renewed every `renewMs`. Should renewals fail (NATS unreachable from
 *   this process) for `fenceMs`, the role stops, since the lease may expire and another
 *   process take it; a later renewal that still finds the lease ours starts it again.
 * - Lost (a renewal found someone else's, or no, lease): the role stops; the process stands by.
 * - Standing by: it asks for the lease every `renewMs`.
 *
 * Order across a handover: a role that stops finishes or gives back what it had received
 * before the lease is given back, so the next holder gets that first. One that crashed leaves
 * its deliveries unacked: they come back `ack_wait` after its last sign of life, and the lease
 * outlives that (`ttlMs` ≥ `fenceMs` + `ack_wait`), so the next holder starts after them.
 */
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import type { AcquireResult, Lease } from './lease.ts';

export interface LeaseTiming {
  /** The lease's time to live: how long a crashed holder keeps it. */
  ttlMs: number;
  /** How often the holder renews it and a standby asks for it. */
  renewMs: number;
  /** Failing renewals for this long stop the role. */
  fenceMs: number;
}

/** The role while this process plays it. */
export interface RoleRun {
  stop(): Promise<void>;
}

export interface RunContext {
  /** Another process played the role until moments ago (it gave the lease back). */
  takenOver: boolean;
}

/** Who this process says it is in a lease: its host name (a pod's name) and pid. */
export const defaultHolder = (): string => `${hostname()}/${process.pid}`;

export interface LeasedRoleOptions {
  log: Logger;
  /** For logs: "the Telegram sender". */
  role: string;
  /** Made with `timing.ttlMs` as its time to live. */
  lease: Lease;
  timing: LeaseTiming;
  /** The role's consumer's ack_wait: a crashed holder's deliveries come back after it. */
  ackWaitMs: number;
  /** Starts the role; rejects if it cannot. */
  run(ctx: RunContext): Promise<RoleRun>;
  /** Told when this process starts or stops playing the role. */
  onActive?(active: boolean): void;
  /** For logs: who this process is in the lease. */
  holder: string;
}

export interface LeasedRole {
  /** Asks for the lease once (and plays the role if it got it), then keeps at it. */
  start(): Promise<void>;
  /** Stops the role if it plays it, then gives the lease back. */
  stop(): Promise<void>;
  /** Whether this process plays the role now. */
  readonly active: boolean;
}

export function createLeasedRole(opts: LeasedRoleOptions): LeasedRole {
  const { timing, role } = opts;
  if (timing.ttlMs < timing.fenceMs + opts.ackWaitMs || timing.renewMs >= timing.fenceMs) {
    throw new Error(
      `${role} lease: ttlMs (${timing.ttlMs}) must be at least fenceMs (${timing.fenceMs}) + ` +
        `the consumer's ack_wait (${opts.ackWaitMs}), and renewMs (${timing.renewMs}) less than fenceMs`,
    );
  }
  const { lease } = opts;
  const log = opts.log.child({ component: 'lease', role, holder: opts.holder });

  let holding = false;
  let current: RoleRun | undefined;
  let lastHolder: string | undefined;
  let tickTimer: NodeJS.Timeout | undefined;
  let fenceTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  // Ticks and the fence run one at a time.
  let chain: Promise<void> = Promise.resolve();
  const serially = (fn: () => Promise<void>): Promise<void> => {
    chain = chain
      .then(fn)
      .catch((err: unknown) => log.error({ err }, `${role}: lease step failed`));
    return chain;
  };

  async function play(takenOver: boolean): Promise<void> {
    if (current !== undefined) return;
    current = await opts.run({ takenOver });
    opts.onActive?.(true);
  }

  async function pause(): Promise<void> {
    const r = current;
    current = undefined;
    if (r === undefined) return;
    opts.onActive?.(false);
    await r.stop();
  }

  /**
   * The role stops `fenceMs` after the renewal sent at `sentAt` unless a later one succeeds.
   * Not queued behind a tick: a renewal that hangs (a database or NATS that does not answer)
   * must not hold the role past the point where another process may take the lease.
   */
  function armFence(sentAt: number): void {
    if (fenceTimer !== undefined) clearTimeout(fenceTimer);
    if (stopped) return;
    fenceTimer = setTimeout(
      () => {
        if (!holding || current === undefined) return;
        log.error(
          { fenceMs: timing.fenceMs },
          `cannot renew the lease: ${role} paused (another process may take it)`,
        );
        pause().catch((err: unknown) => log.error({ err }, `${role}: pausing failed`));
      },
      Math.max(0, sentAt + timing.fenceMs - performance.now()),
    );
    fenceTimer.unref();
  }

  async function tick(): Promise<void> {
    if (stopped) return;
    const sentAt = performance.now();
    if (holding) {
      let renewed: boolean;
      try {
        renewed = await lease.renew();
      } catch (err) {
        log.warn({ err }, `${role}: lease renewal failed; retrying`);
        return;
      }
      if (!renewed) {
        holding = false;
        log.warn(`lost the lease (it expired): ${role} stopped here, standing by`);
        await pause();
        return;
      }
      armFence(sentAt);
      if (current === undefined) {
        log.info(`lease renewed: ${role} runs here again`);
        await play(false);
      }
      return;
    }
    let r: AcquireResult;
    try {
      r = await lease.acquire();
    } catch (err) {
      log.warn({ err }, `${role}: could not ask for the lease; retrying`);
      return;
    }
    if (r.acquired) {
      holding = true;
      lastHolder = undefined;
      armFence(sentAt);
      log.info({ takenOver: r.takenOver }, `took the lease: ${role} runs in this process`);
      await play(r.takenOver);
    } else if (r.heldBy !== lastHolder) {
      lastHolder = r.heldBy;
      log.info({ heldBy: r.heldBy }, `standing by: ${role} runs in another process`);
    }
  }

  function schedule(): void {
    if (stopped) return;
    tickTimer = setTimeout(() => {
      void serially(tick).then(schedule);
    }, timing.renewMs);
    tickTimer.unref();
  }

  return {
    get active() {
      return current !== undefined;
    },
    async start() {
      await lease.ensure();
      // Not through `serially`: a role that cannot start (its consumer refused) fails the start.
      chain = tick();
      await chain;
      schedule();
    },
    async stop() {
      stopped = true;
      if (tickTimer !== undefined) clearTimeout(tickTimer);
      if (fenceTimer !== undefined) clearTimeout(fenceTimer);
      // A step in flight finishes first, unless it hangs (a renewal nobody answers).
      let waited: NodeJS.Timeout | undefined;
      await Promise.race([
        chain.catch(() => undefined),
        new Promise<void>((r) => (waited = setTimeout(r, timing.fenceMs))),
      ]);
      clearTimeout(waited);
      await pause();
      if (holding) {
        holding = false;
        // After the role finished or gave back its work: the next holder gets that first.
        await lease.release().catch((err: unknown) => {
          log.warn({ err }, 'could not give the lease back; it expires by itself');
        });
        log.info(`gave the lease back: ${role}`);
      }
      lease.close();
    },
  };
}
