/**
 * The recording file: JSON lines. The first line is a header, every other line one ingress
 * message exactly as the ingress stream (`RESPAWN_IN`, subjects `respawn.in.<source>`) held it,
 * with its headers and the time JetStream stored it. `respawn-recording/1` is the only version.
 *
 * Written by `npm run replay -- export` and by the synthetic workload generator; read by
 * `npm run replay -- play` and `npm run bench:load`.
 */
import { z } from 'zod';
import { IngressSources } from '../../contracts/index.ts';

export const RECORDING_FORMAT = 'respawn-recording/1';

/**
 * Set by `replay play --into stream` on every message it publishes: the message's time in the
 * recording. `replay export` takes a line's `time` from it when present (else the JetStream
 * timestamp), so re-exporting a replayed deployment keeps the original timeline.
 */
export const RECORDED_TIME_HEADER = 'Respawn-Recorded-Time';

export const RecordingHeader = z.object({
  format: z.literal(RECORDING_FORMAT),
  /** Where it came from: `export` of a deployment, or `generator` with its seed. */
  source: z.enum(['export', 'generator']),
  createdAt: z.iso.datetime(),
  /** The recorded time range, inclusive of `from`, exclusive of `to`. */
  from: z.iso.datetime(),
  to: z.iso.datetime(),
  /** The generator's seed and parameters, or the exported stream and sequence range. */
  meta: z.record(z.string(), z.unknown()).default({}),
});
export type RecordingHeader = z.infer<typeof RecordingHeader>;

export const RecordedMessage = z.object({
  /** Stream sequence in the recording run (generator: 1, 2, 3 … in file order). */
  seq: z.number().int().positive(),
  /** When the ingress stream stored it (ISO-8601, ms precision). Lines are in this order. */
  time: z.iso.datetime(),
  source: z.enum([IngressSources.telegram, IngressSources.razorpay, IngressSources.agent]),
  subject: z.string().min(1),
  /** NATS headers as recorded (Nats-Msg-Id, traceparent, …); each may repeat. */
  headers: z.record(z.string(), z.array(z.string())),
  /** The payload, base64: byte-exact, so a signed body re-verifies. */
  data: z.string(),
});
export type RecordedMessage = z.infer<typeof RecordedMessage>;

/** Parses one line after the header; throws a ZodError naming the bad field. */
export function parseRecordedLine(line: string): RecordedMessage {
  return RecordedMessage.parse(JSON.parse(line));
}

export function parseRecordingHeader(line: string): RecordingHeader {
  return RecordingHeader.parse(JSON.parse(line));
}

/** One line of the file (no newline): the header or a message, validated on the way out. */
export function formatRecordingHeader(header: RecordingHeader): string {
  return JSON.stringify(RecordingHeader.parse(header));
}

export function formatRecordedLine(message: RecordedMessage): string {
  return JSON.stringify(RecordedMessage.parse(message));
}
