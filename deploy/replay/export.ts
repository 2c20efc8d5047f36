/**
 * Exporting the ingress stream (`RESPAWN_IN`) of a time range to a recording file.
 *
 * An ephemeral consumer (no acks, deleted afterwards, gone by itself within a minute if the
 * export dies) starts at `from` by the stream's own index of storage times and reads in
 * batches until `to` or the end of the stream; nothing in the deployment is changed. A line's
 * `time` is RECORDED_TIME_HEADER when the message has one (it was replayed), else the time
 * JetStream stored it. The file is written next to its destination and renamed into place
 * once complete, so a failed export never leaves a half file under the final name.
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/transport-node';
import {
  IngressSources,
  Streams,
  ingressSubject,
  type IngressSource,
} from '../../contracts/index.ts';
import {
  RECORDED_TIME_HEADER,
  RECORDING_FORMAT,
  formatRecordedLine,
  formatRecordingHeader,
  type RecordedMessage,
  type RecordingHeader,
} from './format.ts';

export interface ExportOptions {
  nc: NatsConnection;
  /** Storage-time range: `from` inclusive, `to` exclusive; default the whole stream. */
  from?: Date;
  to?: Date;
  /** Sources to keep; default all three. */
  sources?: readonly IngressSource[];
  out: string;
  onProgress?: (p: { exported: number; pending: number; time: string }) => void;
  /** A message that cannot be written as a line (unknown subject): skipped, reported. */
  onSkip?: (seq: number, reason: string) => void;
  batch?: number;
}

export interface ExportSummary {
  exported: number;
  skipped: number;
  firstSeq: number | undefined;
  lastSeq: number | undefined;
  header: RecordingHeader;
}

const SOURCES = [IngressSources.telegram, IngressSources.razorpay, IngressSources.agent];

function sourceOf(subject: string): IngressSource | undefined {
  return SOURCES.find((s) => ingressSubject(s) === subject);
}

/** The line's time: the recorded-time header if it holds a valid time, else storage time. */
export function lineTime(headerValue: string | undefined, stored: Date): string {
  if (headerValue !== undefined) {
    const t = Date.parse(headerValue);
    if (Number.isFinite(t)) return new Date(t).toISOString();
  }
  return stored.toISOString();
}

export function recordedFromMsg(m: JsMsg, source: IngressSource): RecordedMessage {
  const headers: Record<string, string[]> = {};
  if (m.headers !== undefined) for (const [k, v] of m.headers) headers[k] = [...v];
  const recorded = m.headers?.has(RECORDED_TIME_HEADER)
    ? m.headers.get(RECORDED_TIME_HEADER)
    : undefined;
  return {
    seq: m.seq,
    time: lineTime(recorded, m.time),
    source,
    subject: m.subject,
    headers,
    data: Buffer.from(m.data).toString('base64'),
  };
}

async function write(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

async function close(out: WriteStream): Promise<void> {
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  );
}

export async function exportRecording(opts: ExportOptions): Promise<ExportSummary> {
  const keep = new Set(opts.sources ?? SOURCES);
  const jsm = await jetstreamManager(opts.nc);
  const js = jetstream(opts.nc);
  const stream = Streams.ingress.name;
  // 2.9 takes one filter subject per consumer: filter only when one source is asked for.
  const only = keep.size === 1 ? [...keep][0] : undefined;
  const ci = await jsm.consumers.add(stream, {
    ack_policy: AckPolicy.None,
    ...(opts.from === undefined
      ? { deliver_policy: DeliverPolicy.All }
      : { deliver_policy: DeliverPolicy.StartTime, opt_start_time: opts.from.toISOString() }),
    ...(only === undefined ? {} : { filter_subject: ingressSubject(only) }),
    inactive_threshold: nanos(60_000),
    description: 'replay export (ephemeral)',
  });
  const body = `${opts.out}.part-${process.pid}`;
  const out = createWriteStream(body, { encoding: 'utf8' });
  let exported = 0;
  let skipped = 0;
  let firstSeq: number | undefined;
  let lastSeq: number | undefined;
  let firstTime: number | undefined;
  let lastTime: number | undefined;
  try {
    const c = await js.consumers.get(stream, ci.name);
    let pending = ci.num_pending;
    let done = pending === 0;
    while (!done) {
      const iter = await c.fetch({
        max_messages: Math.min(opts.batch ?? 1000, pending),
        expires: 5_000,
      });
      let got = 0;
      for await (const m of iter) {
        got++;
        pending = m.info.pending;
        if (opts.to !== undefined && m.time.getTime() >= opts.to.getTime()) {
          done = true;
          break;
        }
        const source = sourceOf(m.subject);
        if (source === undefined || !keep.has(source)) {
          if (source === undefined) {
            skipped++;
            opts.onSkip?.(m.seq, `subject ${m.subject} is not an ingress source`);
          }
        } else {
          const line = recordedFromMsg(m, source);
          await write(out, `${formatRecordedLine(line)}\n`);
          exported++;
          firstSeq ??= m.seq;
          lastSeq = m.seq;
          const t = Date.parse(line.time);
          firstTime = Math.min(firstTime ?? t, t);
          lastTime = Math.max(lastTime ?? t, t);
          opts.onProgress?.({ exported, pending, time: line.time });
        }
        if (pending === 0) {
          done = true;
          break;
        }
      }
      if (got === 0) done = true;
    }
  } finally {
    await close(out);
    await jsm.consumers.delete(stream, ci.name).catch(() => undefined);
  }
  const header: RecordingHeader = {
    format: RECORDING_FORMAT,
    source: 'export',
    createdAt: new Date().toISOString(),
    from: new Date(firstTime ?? opts.from?.getTime() ?? Date.now()).toISOString(),
    // `to` is exclusive: one millisecond after the last line.
    to: new Date(
      lastTime === undefined ? (opts.to?.getTime() ?? Date.now()) : lastTime + 1,
    ).toISOString(),
    meta: {
      stream,
      firstSeq: firstSeq ?? null,
      lastSeq: lastSeq ?? null,
      storedFrom: opts.from?.toISOString() ?? null,
      storedTo: opts.to?.toISOString() ?? null,
      sources: [...keep],
    },
  };
  const final = `${opts.out}.tmp-${process.pid}`;
  try {
    const dest = createWriteStream(final, { encoding: 'utf8' });
    await write(dest, `${formatRecordingHeader(header)}\n`);
    for await (const chunk of createReadStream(body, { encoding: 'utf8' })) {
      await write(dest, String(chunk));
    }
    await close(dest);
    await rename(final, opts.out);
  } finally {
    await rm(body, { force: true });
    await rm(final, { force: true });
  }
  return { exported, skipped, firstSeq, lastSeq, header };
}
