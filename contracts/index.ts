/** The public face of contracts/: everything other areas may import, by name. */
export {
  ErrorCodes,
  RespawnError,
  RetryableError,
  TerminalError,
  type ErrorCode,
  type ErrorData,
} from './errors.ts';
export { HeaderNames, type HeaderName } from './headers.ts';
export {
  MAX_PAYLOAD_BYTES,
  defineMessage,
  messageSet,
  parseJson,
  type MessageDef,
  type MessageOf,
  type MessageSet,
} from './message.ts';
export { TIMER_VERB, TimerFired } from './runtime.ts';
export {
  SessionStart,
  SessionStatus,
  SessionStop,
  SessionVerbs,
  Requesters,
  StopReasons,
  type SessionVerb,
  type StopReason,
} from './session.ts';
export { TelegramSend } from './out.ts';
export {
  BillingAdmit,
  BillingBalance,
  BillingHistory,
  BillingMeterClose,
  BillingMeterOpen,
  BillingMeterPause,
  BillingMeterResume,
  BillingTopup,
  BillingVerbs,
  SessionAdmission,
  Tiers,
  type Tier,
} from './billing.ts';
export { DemoAdd, DemoAdded, DemoFail, DemoRemind, DemoReminded, DemoVerbs } from './demo.ts';
export {
  ActorKinds,
  IngressSources,
  PARTITIONS,
  ROOT,
  cmdSubject,
  dlqSubject,
  evtSubject,
  ingressSubject,
  isValidToken,
  outRazorpaySubject,
  outTelegramSubject,
  parseCmdSubject,
  partitionFilter,
  partitionOf,
  validToken,
  type ActorKind,
  type IngressSource,
  type ParsedCmdSubject,
} from './subjects.ts';
export {
  ACK_WAIT_MS,
  DUPLICATE_WINDOW_MS,
  Streams,
  allStreams,
  commandStream,
  commandStreamName,
  ensureTopology,
  partitionConsumer,
  partitionConsumerName,
  type StreamDef,
} from './streams.ts';
