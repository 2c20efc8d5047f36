/**
 * Logging for work that runs again and again and can keep failing the same way for minutes
 * (a worker's chore loop while PostgreSQL is unreachable, the gateway's Telegram sends while the
 * Bot API is down): the first failure of a run is a warning, then at most one `still failing`
 * warning per `everyMs` with the count so far, and one line when it works again. An outage reads
 * as a few lines, not one per round or per message.
 */
import type { Logger } from 'pino';

export interface FailureLog {
  /** `fields`: what this attempt was about (a chat, a message id), on the line if one is written. */
  failed(err: unknown, fields?: Record<string, unknown>): void;
  ok(): void;
}

/** How often a run of failures is reported again while it lasts. */
export const STILL_FAILING_EVERY_MS = 30_000;

export function failureLog(
  log: Logger,
  what: string,
  now: () => number = Date.now,
  everyMs = STILL_FAILING_EVERY_MS,
  /** `error` where nothing gets better by itself (a consumer that no longer exists). */
  level: 'warn' | 'error' = 'warn',
): FailureLog {
  let since: number | undefined;
  let failures = 0;
  let reportedAt = 0;
  return {
    failed(err, fields = {}) {
      const t = now();
      failures++;
      if (since === undefined) {
        since = t;
        reportedAt = t;
        log[level]({ ...fields, err }, `${what} failed`);
      } else if (t - reportedAt >= everyMs) {
        reportedAt = t;
        log[level]({ ...fields, err, failures, failingForMs: t - since }, `${what} still failing`);
      }
    },
    ok() {
      if (since === undefined) return;
      log.info({ failures, failedForMs: now() - since }, `${what} works again`);
      since = undefined;
      failures = 0;
    },
  };
}
