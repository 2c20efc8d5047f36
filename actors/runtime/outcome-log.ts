/**
 * The log line a settled delivery leaves: an ignored message (info), a dead letter (warn), a
 * retry or a message parked behind its key (info), and at debug every handled message, each
 * with its trace id, so an operator can follow a message from the gateway to its effects.
 */
import type { JsMsg } from '@nats-io/jetstream';
import type { Logger } from 'pino';
import { HeaderNames } from '../../contracts/index.ts';
import type { Outcome, Prepared } from './store.ts';
import { traceFields } from './tracing.ts';

const SETTLED_AS = {
  dead: 'message dead-lettered',
  parked: 'message parked behind its key',
  retry: 'message will be retried',
} as const;

export function logOutcome(
  log: Logger,
  m: JsMsg,
  kind: string,
  item: Prepared,
  outcome: Outcome,
): void {
  const fields = (): Record<string, unknown> => ({
    ...traceFields(item),
    actor: kind,
    subject: m.subject,
    msgId: m.headers?.get(HeaderNames.msgId) ?? undefined,
  });
  if (outcome.kind === 'ok') {
    if (outcome.ignored !== undefined) {
      log.info({ ...fields(), reason: outcome.ignored }, 'message ignored');
    } else if (log.isLevelEnabled('debug')) {
      log.debug(fields(), 'message handled');
    }
    return;
  }
  if (outcome.kind === 'dead' || outcome.kind === 'retry' || outcome.kind === 'parked') {
    log[outcome.kind === 'dead' ? 'warn' : 'info'](
      {
        ...fields(),
        streamSeq: m.seq,
        deliveryCount: m.info.deliveryCount,
        code: outcome.error.code,
        reason: outcome.error.message,
      },
      SETTLED_AS[outcome.kind],
    );
  }
}
