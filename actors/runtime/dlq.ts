/**
 * Operators' view of dead letters: list them with their reasons, and re-inject one to the
 * subject it came from once its cause is fixed. Re-injecting the same dead letter twice
 * is de-duplicated (its Nats-Msg-Id derives from the dead letter's sequence).
 */
import type { JetStreamManager, JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { HeaderNames, Streams, cmdSubject, parseCmdSubject } from '../../contracts/index.ts';

export interface DeadLetter {
  seq: number;
  subject: string;
  time: Date;
  code: string;
  reason: string;
  originalSubject: string;
  originalMsgId: string | undefined;
  deliveries: number;
  headers: Record<string, string>;
  data: Uint8Array;
}

const DLQ_HEADERS = new Set<string>([
  HeaderNames.dlqCode,
  HeaderNames.dlqReason,
  HeaderNames.dlqSubject,
  HeaderNames.dlqStream,
  HeaderNames.dlqStreamSeq,
  HeaderNames.dlqDeliveries,
  HeaderNames.dlqActor,
  HeaderNames.dlqMsgId,
]);

/** Dead letters in sequence order, optionally only those whose subject starts with `prefix`. */
export async function listDeadLetters(
  jsm: JetStreamManager,
  opts: { prefix?: string; fromSeq?: number; limit?: number } = {},
): Promise<DeadLetter[]> {
  const info = await jsm.streams.info(Streams.dlq.name);
  const out: DeadLetter[] = [];
  const limit = opts.limit ?? 100;
  for (
    let seq = Math.max(opts.fromSeq ?? 0, info.state.first_seq);
    seq <= info.state.last_seq;
    seq++
  ) {
    if (out.length >= limit) break;
    const m = await jsm.streams.getMessage(Streams.dlq.name, { seq }).catch(() => null);
    if (m === null) continue;
    if (opts.prefix !== undefined && !m.subject.startsWith(opts.prefix)) continue;
    const headers: Record<string, string> = {};
    if (m.header !== undefined) for (const k of m.header.keys()) headers[k] = m.header.get(k);
    out.push({
      seq: m.seq,
      subject: m.subject,
      time: m.time,
      code: headers[HeaderNames.dlqCode] ?? '',
      reason: headers[HeaderNames.dlqReason] ?? '',
      originalSubject: headers[HeaderNames.dlqSubject] ?? '',
      originalMsgId: headers[HeaderNames.dlqMsgId],
      deliveries: Number(headers[HeaderNames.dlqDeliveries] ?? '0'),
      headers,
      data: m.data,
    });
  }
  return out;
}

/**
 * Publishes a dead letter's original payload and headers again on the command subject it
 * came from (without its partition token: the server maps it again).
 */
export async function reinjectDeadLetter(
  js: JetStreamClient,
  dl: DeadLetter,
): Promise<{ subject: string; seq: number; duplicate: boolean }> {
  const parsed = parseCmdSubject(dl.originalSubject.split('.').slice(0, 5).join('.'));
  const subject = cmdSubject(parsed.kind, parsed.key, parsed.verb);
  const h = natsHeaders();
  for (const [k, v] of Object.entries(dl.headers)) if (!DLQ_HEADERS.has(k)) h.set(k, v);
  const ack = await js.publish(subject, dl.data, { msgID: `reinject-${dl.seq}`, headers: h });
  return { subject, seq: ack.seq, duplicate: ack.duplicate };
}
