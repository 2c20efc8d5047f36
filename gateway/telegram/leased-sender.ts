/**
 * The Telegram sender as a gateway runs it: any number of gateways may have
 * `TELEGRAM_OUTBOUND=true`; the one holding the sender lease (`lease.ts`) consumes RESPAWN_OUT
 * and sends, the others stand by and take over when it stops, crashes or is cut off.
 *
 * - Holding: the lease is renewed every `renewMs`. Should renewals fail (NATS unreachable from
 *   this process) for `fenceMs`, sending pauses, since the lease may expire and another
 *   gateway take it; a later renewal that still finds the lease ours resumes.
 * - Lost (a renewal found someone else's, or no, lease): sending stops; the gateway stands by.
 * - Standing by: it tries to take the lease every `renewMs`.
 *
 * Order across a handover: a sender that stops gives back what it had queued (nak, oldest
 * first), so the next one is delivered those first. One that crashed leaves them unacked: they
 * are redelivered `ack_wait` after its last sign of life, and the lease outlives that
 * (`ttlMs` ≥ `fenceMs` + `ack_wait`), so the next holder starts after them, not before.
 */
import { hostname } from 'node:os';
import type { NatsConnection } from '@nats-io/transport-node';
import { TELEGRAM_OUT_ACK_WAIT_MS } from '../../contracts/index.ts';
import { createSenderLeaseMetrics } from '../metrics.ts';
import {
  createTelegramOutbound,
  type TelegramOutbound,
  type TelegramOutboundOptions,
} from './outbound.ts';
import { createSenderLease, type AcquireResult, type SenderLease } from './lease.ts';

export interface LeaseTiming {
  /** The lease's time to live: how long a crashed holder keeps it. */
  ttlMs: number;
  /** How often the holder renews it and a standby asks for it. */
  renewMs: number;
  /** Failing renewals for this long pause sending. */
  fenceMs: number;
}

export const DEFAULT_LEASE: LeaseTiming = { ttlMs: 20_000, renewMs: 2_000, fenceMs: 8_000 };

export interface LeasedSenderOptions extends TelegramOutboundOptions {
  /** Shown to operators in the lease; default `<host name>/<pid>`. */
  holder?: string;
  lease?: LeaseTiming;
  /** The lease on a connection of its own (tests: cut this gateway off from the lease). */
  leaseNc?: NatsConnection;
}

export interface LeasedSender extends TelegramOutbound {
  /** Whether this gateway is the one sending now. */
  readonly active: boolean;
}

export function createLeasedSender(opts: LeasedSenderOptions): LeasedSender {
  const timing = opts.lease ?? DEFAULT_LEASE;
  if (
    timing.ttlMs < timing.fenceMs + TELEGRAM_OUT_ACK_WAIT_MS ||
    timing.renewMs >= timing.fenceMs
  ) {
    throw new Error(
      `sender lease: ttlMs (${timing.ttlMs}) must be at least fenceMs (${timing.fenceMs}) + the ` +
        `out consumer's ack_wait (${TELEGRAM_OUT_ACK_WAIT_MS}), and renewMs (${timing.renewMs}) less than fenceMs`,
    );
  }
  const holder = opts.holder ?? `${hostname()}/${process.pid}`;
  const log = opts.log.child({ component: 'telegram-sender-lease', holder });
  const lease: SenderLease = createSenderLease({
    nc: opts.leaseNc ?? opts.nc,
    jsm: opts.jsm,
    holder,
    ttlMs: timing.ttlMs,
  });
  const gauge = createSenderLeaseMetrics(opts.metricsRegistry);
  gauge.set(0);

  let holding = false;
  let out: TelegramOutbound | undefined;
  let lastHolder: string | undefined;
  let tickTimer: NodeJS.Timeout | undefined;
  let fenceTimer: NodeJS.Timeout | undefined;
  let stopped = false;
  // Ticks and the fence run one at a time.
  let chain: Promise<void> = Promise.resolve();
  const serially = (fn: () => Promise<void>): Promise<void> => {
    chain = chain.then(fn).catch((err: unknown) => log.error({ err }, 'sender lease step failed'));
    return chain;
  };

  async function send(): Promise<void> {
    if (out !== undefined) return;
    const o = createTelegramOutbound(opts);
    await o.start();
    out = o;
    gauge.set(1);
  }

  async function pause(): Promise<void> {
    const o = out;
    out = undefined;
    gauge.set(0);
    await o?.stop();
  }

  /** Sending pauses `fenceMs` after the renewal sent at `sentAt` unless a later one succeeds. */
  function armFence(sentAt: number): void {
    if (fenceTimer !== undefined) clearTimeout(fenceTimer);
    fenceTimer = setTimeout(
      () =>
        void serially(async () => {
          if (!holding || out === undefined) return;
          log.error(
            { fenceMs: timing.fenceMs },
            'cannot renew the Telegram sender lease: sending paused (another gateway may take it)',
          );
          await pause();
        }),
      Math.max(0, sentAt + timing.fenceMs - performance.now()),
    );
  }

  async function tick(): Promise<void> {
    if (stopped) return;
    const sentAt = performance.now();
    if (holding) {
      let renewed: boolean;
      try {
        renewed = await lease.renew();
      } catch (err) {
        log.warn({ err }, 'Telegram sender lease renewal failed; retrying');
        return;
      }
      if (!renewed) {
        holding = false;
        log.warn('lost the Telegram sender lease (it expired): sending stopped, standing by');
        await pause();
        return;
      }
      armFence(sentAt);
      if (out === undefined) {
        log.info('Telegram sender lease renewed: sending again');
        await send();
      }
      return;
    }
    let r: AcquireResult;
    try {
      r = await lease.acquire();
    } catch (err) {
      log.warn({ err }, 'could not ask for the Telegram sender lease; retrying');
      return;
    }
    if (r.acquired) {
      holding = true;
      lastHolder = undefined;
      armFence(sentAt);
      log.info('took the Telegram sender lease: this gateway sends Telegram messages');
      await send();
    } else if (r.heldBy !== lastHolder) {
      lastHolder = r.heldBy;
      log.info({ sender: r.heldBy }, 'standing by: another gateway sends Telegram messages');
    }
  }

  function schedule(): void {
    if (stopped) return;
    tickTimer = setTimeout(() => {
      void serially(tick).then(schedule);
    }, timing.renewMs);
  }

  return {
    get active() {
      return out !== undefined;
    },
    get pending() {
      return out?.pending ?? 0;
    },
    async start() {
      await lease.ensure();
      // Not through `serially`: a sender that cannot start (its consumer refused) fails the start.
      chain = tick();
      await chain;
      schedule();
    },
    async stop() {
      stopped = true;
      if (tickTimer !== undefined) clearTimeout(tickTimer);
      if (fenceTimer !== undefined) clearTimeout(fenceTimer);
      await chain;
      await pause();
      if (holding) {
        holding = false;
        // After the sender gave back its queue: the next holder gets those first.
        await lease.release().catch((err: unknown) => {
          log.warn({ err }, 'could not give the Telegram sender lease back; it expires by itself');
        });
        log.info('gave the Telegram sender lease back');
      }
      lease.close();
    },
  };
}
