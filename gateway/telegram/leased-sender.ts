/**
 * The Telegram sender as a gateway runs it: any number of gateways may have
 * `TELEGRAM_OUTBOUND=true`; the one holding the sender lease (the key `holder` of the KV
 * bucket `respawn_tg_sender`, `contracts/leased-role.ts`) consumes RESPAWN_OUT and sends, the
 * others stand by and take over when it stops, crashes or is cut off. One chat's order and
 * pace live in the sending process, so one process sends at a time.
 *
 * A sender that stops finishes its calls in flight, waits until none of its pull requests is
 * left on the consumer, and gives back what it had queued, oldest first (outbound.ts), before
 * the lease is given back: the next sender sends those first.
 */
import {
  TELEGRAM_OUT_ACK_WAIT_MS,
  createKvLease,
  createLeasedRole,
  defaultHolder,
  type LeaseTiming,
} from '../../contracts/index.ts';
import type { NatsConnection } from '@nats-io/transport-node';
import { createSenderLeaseMetrics } from '../metrics.ts';
import {
  createTelegramOutbound,
  type TelegramOutbound,
  type TelegramOutboundOptions,
} from './outbound.ts';

export const SENDER_BUCKET = 'respawn_tg_sender';

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
  const gauge = createSenderLeaseMetrics(opts.metricsRegistry);
  gauge.set(0);
  let out: TelegramOutbound | undefined;
  const timing = opts.lease ?? DEFAULT_LEASE;
  const holder = opts.holder ?? defaultHolder();
  const role = createLeasedRole({
    log: opts.log,
    role: 'the Telegram sender',
    lease: createKvLease({
      nc: opts.leaseNc ?? opts.nc,
      jsm: opts.jsm,
      bucket: SENDER_BUCKET,
      key: 'holder',
      description: 'Gateway: which gateway sends Telegram messages (a lease, max_age its TTL)',
      holder,
      ttlMs: timing.ttlMs,
    }),
    holder,
    timing,
    ackWaitMs: TELEGRAM_OUT_ACK_WAIT_MS,
    async run({ takenOver }) {
      // The sender before may have written to any chat just now: a chat's pace holds.
      const o = createTelegramOutbound({
        ...opts,
        pauseFirstMs: takenOver ? opts.perChatIntervalMs : 0,
      });
      await o.start();
      out = o;
      return o;
    },
    onActive: (active) => gauge.set(active ? 1 : 0),
  });
  return {
    get active() {
      return role.active;
    },
    get pending() {
      return role.active ? (out?.pending ?? 0) : 0;
    },
    start: () => role.start(),
    stop: () => role.stop(),
  };
}
