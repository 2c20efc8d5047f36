/**
 * Publishes authenticated ingress to RESPAWN_IN and says whether JetStream stored it. The
 * Nats-Msg-Id comes from the sender's own id (update_id, event id, report id), so a retry of
 * the same delivery is stored once within the stream's de-duplication window.
 */
import { headers as natsHeaders } from '@nats-io/transport-node';
import {
  TraceAttributes,
  ingressSubject,
  tracedPublish,
  type IngressSource,
  type Publisher,
} from '../contracts/index.ts';
import type { IngressMetrics } from './metrics.ts';
import type { ConnectionWatch } from './nats-status.ts';

export type PublishResult =
  | { ok: true; duplicate: boolean; seq: number }
  | { ok: false; reason: string };

export type IngressPublisher = (
  source: IngressSource,
  data: Uint8Array,
  msgId: string,
) => Promise<PublishResult>;

export function createIngressPublisher(deps: {
  js: Publisher;
  connection: ConnectionWatch;
  timeoutMs: number;
  metrics: IngressMetrics;
}): IngressPublisher {
  return async (source, data, msgId) => {
    // Down now: answer at once (the sender retries) rather than after the publish timeout.
    if (!deps.connection.connected()) return { ok: false, reason: 'NATS is disconnected' };
    const end = deps.metrics.publishSeconds.startTimer({ source });
    try {
      // A producer span under the request's span; its context travels in the headers.
      const subject = ingressSubject(source);
      const h = natsHeaders();
      const ack = await tracedPublish(
        subject,
        h,
        () => deps.js.publish(subject, data, { msgID: msgId, timeout: deps.timeoutMs, headers: h }),
        { msgId, attributes: { [TraceAttributes.ingressSource]: source } },
      );
      end();
      return { ok: true, duplicate: ack.duplicate, seq: ack.seq };
    } catch (err) {
      return { ok: false, reason: err instanceof Error ? err.message : String(err) };
    }
  };
}
