/**
 * `npm start`: the whole of Respawn on this machine with one command (docs/local.md). NATS,
 * PostgreSQL, the fakes of Azure / Telegram / Razorpay for whichever has no credentials, the
 * gateway, one actor worker, the ingress routers, the effects runners and simulated VM
 * agents, each logged with its URL. Ctrl-C or SIGTERM stops everything.
 */
import { createRootLogger } from '../actors/log.ts';
import { loadTelemetryConfig, startTelemetry } from '../contracts/index.ts';
import { loadLocalOptions, startLocal } from './local/index.ts';

async function main(): Promise<void> {
  const level = process.env.LOG_LEVEL ?? 'info';
  const log = createRootLogger({ level, name: 'respawn-local' });
  let opts;
  let telemetryConfig;
  try {
    opts = loadLocalOptions(process.env, log);
    telemetryConfig = loadTelemetryConfig(process.env, 'respawn-local');
  } catch (err) {
    log.fatal({ err }, 'cannot start');
    process.exit(2);
  }
  // A signal while starting aborts the start (startLocal stops what it started).
  const starting = new AbortController();
  const abort = (): void => starting.abort();
  process.once('SIGINT', abort);
  process.once('SIGTERM', abort);
  // Every component runs in this one process: one tracer provider, service respawn-local.
  const telemetry = await startTelemetry({ config: telemetryConfig, log });
  let run;
  try {
    run = await startLocal({ ...opts, signal: starting.signal });
  } catch (err) {
    if (starting.signal.aborted) {
      log.info('stopped while starting');
      process.exit(0);
    }
    throw err;
  }
  process.off('SIGINT', abort);
  process.off('SIGTERM', abort);
  log.info(
    {
      gateway: run.gatewayUrl,
      sandbox: run.sandboxUrl,
      telegramFake: run.telegram?.url,
      razorpayFake: run.razorpay?.url,
      armFake: run.arm?.url,
    },
    run.sandboxUrl === undefined
      ? 'Respawn is running; Ctrl-C stops it'
      : `Respawn is running; chat with the bot at ${run.sandboxUrl} — Ctrl-C stops it`,
  );
  let stopping = false;
  const shutdown = (signal: string): void => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    run
      .stop()
      .then(() => telemetry.shutdown())
      .then(
        () => process.exit(0),
        (err: unknown) => {
          log.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
  };
  process.on('SIGINT', () => shutdown('SIGINT'));
  process.on('SIGTERM', () => shutdown('SIGTERM'));
}

main().catch((err: unknown) => {
  createRootLogger({ level: 'info', name: 'respawn-local' }).fatal(
    { err },
    'respawn failed to start',
  );
  process.exit(1);
});
