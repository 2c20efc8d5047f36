/**
 * Per-IP and per-player rate limits in Redis (rate-limiter-flexible's atomic Lua counters),
 * shared by every gateway process. If Redis fails or answers slower than the configured
 * timeout, the same limits are applied from process memory for that request: a Redis outage
 * degrades the limits to per-process, it never blocks webhooks. A refusal carries the seconds
 * until the key's window lets it in again, for `Retry-After`.
 */
import { BlockList, isIP } from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { RateLimiterMemory, RateLimiterRedis, RateLimiterRes } from 'rate-limiter-flexible';
import { within } from './async.ts';
import type { RateLimitConfig } from './config.ts';
import type { IngressMetrics } from './metrics.ts';

/**
 * A limit's answer. A refusal says in how many whole seconds the key's window lets it in again
 * (what a `Retry-After` carries): the limiter's own count when it gives one, else the window.
 */
export type Verdict = { allowed: true } | { allowed: false; retryAfterS: number };

export interface RateLimits {
  /** Whether this IP may make another request now. Exempt addresses always may. */
  ip(address: string): Promise<Verdict>;
  /** Whether this Telegram user may have another update handled now. */
  player(userId: string): Promise<Verdict>;
}

type Check = (key: string) => Promise<Verdict>;

const ALLOWED: Verdict = { allowed: true };

const STORE_ERROR_LOG_EVERY_MS = 10_000;

/** IPv4-mapped IPv6 (`::ffff:1.2.3.4`, what a dual-stack socket reports) as plain IPv4. */
function plainAddress(address: string): string {
  const m = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  return m ? m[1]! : address;
}

export function exemptList(entries: readonly string[]): BlockList {
  const list = new BlockList();
  for (const entry of entries) {
    const [addr, bits] = entry.split('/');
    const family = addr === undefined ? 0 : isIP(addr);
    if (family === 0) throw new Error(`RATE_LIMIT_IP_EXEMPT: ${entry} is not an IP or CIDR`);
    const type = family === 4 ? 'ipv4' : 'ipv6';
    if (bits === undefined) {
      list.addAddress(addr!, type);
      continue;
    }
    const prefix = Number(bits);
    if (!Number.isInteger(prefix) || prefix < 0 || prefix > (family === 4 ? 32 : 128)) {
      throw new Error(`RATE_LIMIT_IP_EXEMPT: ${entry} has an invalid prefix length`);
    }
    list.addSubnet(addr!, prefix, type);
  }
  return list;
}

/**
 * Whole seconds until a refused key may try again: the limiter's time left, rounded up, or the
 * whole window when it gives none (Redis reports no time left for a key without an expiry).
 */
export function retryAfterSeconds(msBeforeNext: number | undefined, durationS: number): number {
  return msBeforeNext !== undefined && Number.isFinite(msBeforeNext) && msBeforeNext > 0
    ? Math.ceil(msBeforeNext / 1000)
    : durationS;
}

export function createRateLimits(deps: {
  redis: Redis;
  config: RateLimitConfig;
  metrics: IngressMetrics;
  log: Logger;
}): RateLimits {
  const { config, metrics } = deps;
  const log = deps.log.child({ component: 'ratelimit' });
  let lastStoreErrorLog = 0;

  function limiter(name: 'ip' | 'player', points: number, durationS: number): Check {
    const refused = (res: RateLimiterRes): Verdict => ({
      allowed: false,
      retryAfterS: retryAfterSeconds(res.msBeforeNext, durationS),
    });
    const keyPrefix = `${config.prefix}${name}`;
    const store = new RateLimiterRedis({
      storeClient: deps.redis,
      keyPrefix,
      points,
      duration: durationS,
      rejectIfRedisNotReady: true,
    });
    const memory = new RateLimiterMemory({ keyPrefix, points, duration: durationS });
    return async (key) => {
      try {
        await within(store.consume(key), config.timeoutMs, 'Redis');
        return ALLOWED;
      } catch (err) {
        if (err instanceof RateLimiterRes) return refused(err);
        metrics.rateLimitStoreErrors.inc({ limit: name });
        const now = Date.now();
        if (now - lastStoreErrorLog > STORE_ERROR_LOG_EVERY_MS) {
          lastStoreErrorLog = now;
          log.warn({ err, limit: name }, 'rate-limit store failed; limiting from process memory');
        }
      }
      try {
        await memory.consume(key);
        return ALLOWED;
      } catch (err) {
        if (err instanceof RateLimiterRes) return refused(err);
        throw err;
      }
    };
  }

  const exempt = exemptList(config.exempt);
  const ipCheck = limiter('ip', config.ip.points, config.ip.durationS);
  const playerCheck = limiter('player', config.player.points, config.player.durationS);

  return {
    ip(address) {
      const a = plainAddress(address);
      const family = isIP(a);
      if (family !== 0 && exempt.check(a, family === 4 ? 'ipv4' : 'ipv6')) {
        return Promise.resolve(ALLOWED);
      }
      return ipCheck(a);
    },
    player: (userId) => playerCheck(userId),
  };
}
