/** The public face of gateway/: what the process entry, tests and the local run may use. */
export {
  GatewayConfigError,
  GatewayEnvSchema,
  TELEGRAM_UPDATE_TYPES,
  TELEGRAM_WEBHOOK_RANGES,
  gatewayConfigFrom,
  loadGatewayEnv,
  type GatewayConfig,
  type GatewayEnv,
  type RateLimitConfig,
} from './config.ts';
export {
  agentTokenVerifier,
  razorpaySignature,
  refuseAllAgents,
  safeEqual,
  type AgentVerifier,
} from './http/auth.ts';
export { AGENT_TOKEN_HEADER, agentMsgId } from './http/agent.ts';
export {
  RAZORPAY_EVENT_ID_HEADER,
  RAZORPAY_SIGNATURE_HEADER,
  razorpayMsgId,
} from './http/razorpay.ts';
export { TELEGRAM_SECRET_HEADER } from './http/telegram.ts';
export { REDACT_PATHS, createGatewayLogger } from './log.ts';
export { Outcomes, Reasons, SendOutcomes, Sources } from './metrics.ts';
export { createGateway, type Gateway, type GatewayDeps } from './server.ts';
export { URL_BUTTON_TEXT, keyboardOf } from './telegram/deliver.ts';
export { type IngestResult, type TelegramIngest } from './telegram/ingest.ts';
export {
  createTelegramOutbound,
  type TelegramOutbound,
  type TelegramOutboundOptions,
} from './telegram/outbound.ts';
export {
  DEFAULT_LEASE,
  SENDER_BUCKET,
  createLeasedSender,
  type LeasedSender,
  type LeasedSenderOptions,
} from './telegram/leased-sender.ts';
export { createPacer, type Pacer, type PacerClock } from './telegram/pacer.ts';
export {
  createTelegramPoller,
  type TelegramPoller,
  type TelegramPollerOptions,
} from './telegram/poller.ts';
export {
  SENT_BUCKET,
  createSentStore,
  type SentRecord,
  type SentStore,
} from './telegram/sent-store.ts';
export { updateMsgId } from './telegram/update.ts';
export { runGateway, type RunOptions, type RunningGateway } from './main.ts';
