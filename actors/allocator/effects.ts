/**
 * Carries out the allocator's Azure effects (`respawn.out.azure.<region>`) through the
 * VmProvider port and reports each result back as an allocator command. Handlers never call
 * Azure; this runner is where the slow, failing, long-running work happens.
 *
 * Effects of one player run in order (a delete waits for that VM's create; the next
 * candidate's create waits for the failed VM's delete; an archive never races a create);
 * different players run side by side. What each effect does, and how its result is reported
 * once however often it is done, is in effect-work.ts.
 */
import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  headerRecord,
  deadLetterHeaders,
  ErrorCodes,
  ActorKinds,
  AzureDeleteVm,
  AzureReconcileDisks,
  AzureRefresh,
  HeaderNames,
  SpanKind,
  Streams,
  TraceAttributes,
  dlqSubject,
  extractTrace,
  failSpan,
  messageAttributes,
  outAzureSubject,
  subjectTemplate,
  traceIdOf,
  tracedPublish,
  withSpan,
  watchConsumer,
} from '../../contracts/index.ts';
import type { DeadLetterCounter } from '../runtime/index.ts';
import { ProviderError, createStreamingSecurityGroup, type VmProvider } from './azure/index.ts';
import type { DiskRecordSource } from './disk-round.ts';

import {
  effects,
  runEffect,
  type AzureEffectsConfig,
  type Effect,
  type EffectContext,
} from './effect-work.ts';

export type { AzureEffectsConfig };

export interface AzureEffectsRunner {
  start(): Promise<void>;
  stop(): Promise<void>;
}

/**
 * The effects consumer's default ack_wait. A runner marks each effect it holds working every
 * quarter of it, from the moment it receives the effect (also while the effect waits behind
 * the player's earlier ones), so only a runner that died lets its effects come back; the
 * region's lease outlives it (actors/roles.ts), so a crashed runner's effects are redelivered
 * before the next runner starts.
 */
export const AZURE_EFFECTS_ACK_WAIT_MS = 20_000;

/** An effect that failed is tried again after Azure's Retry-After when throttled, else 5 s. */
export const EFFECT_RETRY_MS = 5_000;
export function retryDelayMs(err: unknown): number {
  const after = err instanceof ProviderError ? err.retryAfterMs : null;
  // Within reason: a Retry-After of hours would park the region's refresh that long.
  return after === null ? EFFECT_RETRY_MS : Math.min(Math.max(after, 1_000), 10 * 60_000);
}

export function createAzureEffectsRunner(deps: {
  js: JetStreamClient;
  jsm: JetStreamManager;
  provider: VmProvider;
  config: AzureEffectsConfig;
  log: Logger;
  /** The players' recorded disks, for disk reconciliation; without it rounds are skipped. */
  diskRecords?: DiskRecordSource;
  /** The consumer's ack_wait (default AZURE_EFFECTS_ACK_WAIT_MS). */
  ackWaitMs?: number;
  /** The worker's dead-letter counter, counted as actor `azure-effects`. */
  deadLetters?: DeadLetterCounter;
}): AzureEffectsRunner {
  const { js, jsm, provider, config } = deps;
  const ackWaitMs = deps.ackWaitMs ?? AZURE_EFFECTS_ACK_WAIT_MS;
  const log = deps.log.child({ component: 'azure-effects', region: config.region });
  const durable = `azure-${config.region}`;
  const perVm = new Map<string, Promise<void>>();
  let messages: ConsumerMessages | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  async function report(effectId: string, subject: string, data: Uint8Array): Promise<void> {
    // Under the effect's consumer span (active): the result continues the trace.
    const h = natsHeaders();
    const msgID = `res-${effectId}`;
    await tracedPublish(subject, h, () => js.publish(subject, data, { msgID, headers: h }), {
      msgId: msgID,
    });
  }

  const streamingNsg = createStreamingSecurityGroup({ provider, region: config.region, log });
  const context: EffectContext = {
    provider,
    config,
    log,
    diskRecords: deps.diskRecords,
    streamingNsg,
    report,
  };

  async function handle(m: JsMsg): Promise<void> {
    const effectId = m.headers?.get(HeaderNames.msgId) || `seq-${m.seq}`;
    let e: Effect;
    try {
      e = effects.decode(m.data);
    } catch (err) {
      // With the Respawn-Dlq-* headers, so `npm run dlq` lists why, from where, and by whom.
      const code = ErrorCodes.invalidPayload;
      const reason = err instanceof Error ? err.message : String(err);
      await js.publish(dlqSubject(ActorKinds.alloc, code), m.data, {
        msgID: `dlq-${effectId}`,
        headers: deadLetterHeaders(m, headerRecord(m), { code, reason, actor: 'azure-effects' }),
      });
      deps.deadLetters?.inc({ actor: 'azure-effects', code });
      log.warn({ subject: m.subject, effectId, err }, 'invalid Azure effect dead-lettered');
      m.term();
      return;
    }
    // A player's VMs share the player's disk: a failed VM must be deleted (releasing the
    // disk) before the next candidate's create can attach it, and an archive must not race
    // a create: a player's effects run in order. Different players run side by side.
    const key =
      e.type === AzureRefresh.type
        ? '(refresh)'
        : e.type === AzureReconcileDisks.type
          ? '(disks)'
          : e.type === AzureDeleteVm.type
            ? (e.playerId ?? e.sessionId)
            : e.playerId;
    const previous = perVm.get(key) ?? Promise.resolve();
    // Held from now on, also while waiting its turn: without this an effect queued behind a
    // long create would be redelivered and queued a second time.
    const working = setInterval(() => m.working(), ackWaitMs / 4);
    // The consumer span starts when the effect's turn comes; the Azure calls are its children.
    const span = {
      kind: SpanKind.CONSUMER,
      parent: extractTrace(m.headers),
      attributes: messageAttributes(
        'process',
        {
          subject: m.subject,
          msgId: effectId,
          stream: m.info.stream,
          streamSeq: m.seq,
          deliveryCount: m.info.deliveryCount,
        },
        {
          [TraceAttributes.region]: config.region,
          ...('playerId' in e && e.playerId !== undefined
            ? { [TraceAttributes.player]: e.playerId }
            : {}),
          ...('sessionId' in e ? { [TraceAttributes.session]: e.sessionId } : {}),
          ...('vmName' in e ? { [TraceAttributes.vmName]: e.vmName } : {}),
        },
      ),
    };
    const mine = previous.then(() =>
      withSpan(`process ${subjectTemplate(m.subject)}`, span, async (s) => {
        try {
          await runEffect(context, e, effectId);
          m.ack();
        } catch (err) {
          failSpan(s, err);
          const delayMs = retryDelayMs(err);
          log.warn(
            { err, effectId, traceId: traceIdOf(s), retryInMs: delayMs },
            'effect failed; will be retried',
          );
          m.nak(delayMs);
        }
      }),
    );
    perVm.set(key, mine);
    try {
      await mine;
    } finally {
      clearInterval(working);
    }
    if (perVm.get(key) === mine) perVm.delete(key);
  }

  return {
    async start() {
      if (config.publicIp !== false) {
        // Converged once per start, without holding the consumer back: a create that comes
        // first waits for this same PUT, and one that fails is tried again before the next NIC.
        streamingNsg.ensure().catch((err: unknown) => {
          log.warn({ err, nsg: streamingNsg.name }, 'streaming NSG not converged; will retry');
        });
      }
      const existing = await jsm.consumers.info(Streams.out.name, durable).catch(() => undefined);
      if (existing === undefined) {
        await jsm.consumers.add(Streams.out.name, {
          durable_name: durable,
          filter_subject: outAzureSubject(config.region),
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(ackWaitMs),
          max_ack_pending: config.concurrency,
          max_deliver: -1,
        });
      } else if (existing.config.ack_wait !== nanos(ackWaitMs)) {
        // A consumer made with another ack_wait (an older release's 60 s, or another setting):
        // the lease's time to live was derived from this one, so the consumer follows it.
        await jsm.consumers.update(Streams.out.name, durable, { ack_wait: nanos(ackWaitMs) });
        log.info(
          { durable, from_ms: (existing.config.ack_wait ?? 0) / 1e6, to_ms: ackWaitMs },
          'Azure effects consumer ack_wait updated',
        );
      }
      const c = await js.consumers.get(Streams.out.name, durable);
      const watch = watchConsumer(log, { stream: Streams.out.name, consumer: durable });
      messages = await c.consume({
        max_messages: config.concurrency,
        callback: (m) => {
          watch.delivered();
          inFlight++;
          void handle(m).finally(() => {
            inFlight--;
            if (inFlight === 0) drained?.();
          });
        },
      });
      watch.follow(messages);
      log.info({ durable }, 'Azure effects runner started');
    },
    async stop() {
      await messages?.close();
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
      await streamingNsg.idle();
    },
  };
}
