/** NATS header names Respawn reads and writes. */
export const HeaderNames = {
  /** JetStream de-duplication id; also the inbox key of the consumer. */
  msgId: 'Nats-Msg-Id',
  /** W3C trace context. */
  traceparent: 'traceparent',
  tracestate: 'tracestate',
  /** Versioned message type, e.g. `session.start.v1` (the payload's `type`). */
  type: 'Respawn-Type',
  /** The message id of the input whose handling emitted this message. */
  causationId: 'Respawn-Causation-Id',
  /** Dead letters: why, what code, and where the original came from. */
  dlqReason: 'Respawn-Dlq-Reason',
  dlqCode: 'Respawn-Dlq-Code',
  dlqSubject: 'Respawn-Dlq-Subject',
  dlqStream: 'Respawn-Dlq-Stream',
  dlqStreamSeq: 'Respawn-Dlq-Stream-Seq',
  dlqDeliveries: 'Respawn-Dlq-Deliveries',
  dlqActor: 'Respawn-Dlq-Actor',
  /** The dead letter's original Nats-Msg-Id (the DLQ publish has its own). */
  dlqMsgId: 'Respawn-Dlq-Msg-Id',
} as const;
export type HeaderName = (typeof HeaderNames)[keyof typeof HeaderNames];
