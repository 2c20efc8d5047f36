/**
 * Long polling for local development (no public URL needed): grammY's `getUpdates` in a loop,
 * each update through the same ingest as the webhook (same checks, same Nats-Msg-Id
 * `tg-<update_id>`). The offset moves past an update only once it is stored (or dropped on
 * purpose), so Telegram keeps anything not yet in JetStream and hands it out again. A pressed
 * button is answered (answerCallbackQuery) once its update is stored or dropped on purpose, as
 * the webhook does in its response, so the player's button stops spinning; that answer is best
 * effort and never holds up polling.
 */
import { GrammyError, type Api } from 'grammy';
import type { Update } from 'grammy/types';
import type { Logger } from 'pino';
import { sleep } from '../async.ts';
import { describeTelegramError } from './deliver.ts';
import { callbackAnswer, type CallbackAnswer, type TelegramIngest } from './ingest.ts';

type UpdateType = Exclude<keyof Update, 'update_id'>;

export interface TelegramPollerOptions {
  api: Api;
  ingest: TelegramIngest;
  log: Logger;
  allowedUpdates: readonly string[];
  /** Long-poll timeout in seconds (0 = short polling, for tests). */
  timeoutS: number;
  /** Strings never logged (the bot token). */
  secrets?: readonly string[];
  backoff?: { baseMs: number; maxMs: number };
}

export interface TelegramPoller {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** The next offset to confirm (last stored update_id + 1). */
  readonly offset: number | undefined;
}

export function createTelegramPoller(opts: TelegramPollerOptions): TelegramPoller {
  const log = opts.log.child({ component: 'telegram-poll' });
  const secrets = opts.secrets ?? [];
  const backoff = opts.backoff ?? { baseMs: 500, maxMs: 15_000 };
  const abort = new AbortController();
  let offset: number | undefined;
  let loop: Promise<void> | undefined;
  const answering = new Set<Promise<void>>();

  const delay = (failures: number): number =>
    Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.min(failures, 20));

  /** Stops the button's spinner; a failure only costs the player the spinner, so it is logged. */
  function answerCallback(answer: CallbackAnswer, updateId: number): void {
    const p = opts.api
      .answerCallbackQuery(
        answer.callback_query_id,
        answer.text === undefined ? undefined : { text: answer.text },
      )
      .then(
        () => undefined,
        (err: unknown) => {
          log.warn(
            { updateId, error: describeTelegramError(err, secrets) },
            'answerCallbackQuery failed; the update is stored all the same',
          );
        },
      )
      .finally(() => answering.delete(p));
    answering.add(p);
  }

  /** Ingests a batch in order; false if one could not be stored (retry from there). */
  async function ingestBatch(updates: { update_id: number }[]): Promise<boolean> {
    for (const u of updates) {
      const r = await opts.ingest(Buffer.from(JSON.stringify(u)));
      if (r.kind === 'unavailable') return false;
      // Stored, deliberately dropped, or malformed: either way, not to be fetched again.
      offset = u.update_id + 1;
      const answer = callbackAnswer(r);
      if (answer !== undefined) answerCallback(answer, u.update_id);
    }
    return true;
  }

  async function run(): Promise<void> {
    let failures = 0;
    while (!abort.signal.aborted) {
      try {
        const updates = await opts.api.getUpdates(
          {
            ...(offset === undefined ? {} : { offset }),
            timeout: opts.timeoutS,
            // Validated against Telegram's update types by the configuration.
            allowed_updates: opts.allowedUpdates as readonly UpdateType[],
          },
          // grammY types its signal with the abort-controller shim; Node's is what it uses.
          abort.signal as unknown as Parameters<Api['getUpdates']>[1],
        );
        if (await ingestBatch(updates)) {
          failures = 0;
          continue;
        }
        log.warn({ offset }, 'update not stored; polling again from it after a pause');
      } catch (err) {
        if (abort.signal.aborted) break;
        const conflict = err instanceof GrammyError && err.error_code === 409;
        log[conflict ? 'error' : 'warn'](
          { error: describeTelegramError(err, secrets), failures },
          conflict
            ? 'getUpdates conflict: a webhook is set or another poller runs'
            : 'getUpdates failed',
        );
      }
      await sleep(delay(failures++), abort.signal);
    }
  }

  return {
    get offset() {
      return offset;
    },
    async start() {
      // getUpdates is refused while a webhook is set; polling mode means no webhook.
      await opts.api.deleteWebhook({ drop_pending_updates: false });
      loop = run();
      log.info({ timeoutS: opts.timeoutS }, 'telegram long polling started');
    },
    async stop() {
      abort.abort();
      await loop;
      await Promise.all([...answering]);
      if (offset !== undefined) {
        // Confirm what was stored, so the next start does not fetch it again.
        await opts.api.getUpdates({ offset, limit: 1, timeout: 0 }).catch(() => undefined);
      }
      log.info({ offset }, 'telegram long polling stopped');
    },
  };
}
