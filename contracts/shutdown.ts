/**
 * Graceful shutdown of a Respawn process on SIGTERM or SIGINT: stop once (a second signal is
 * ignored), exit 0 when stopped, 1 with a log line when stopping failed.
 */
import type { Logger } from 'pino';

export function exitOnSignals(log: Logger, stop: () => Promise<void>): void {
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    stop()
      .then(() => process.exit(0))
      .catch((err: unknown) => {
        log.error({ err }, 'shutdown failed');
        process.exit(1);
      });
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
}
