/**
 * What `startLocal` runs and how: every field has a local default, and each third party
 * (Azure, Telegram, Razorpay) given credentials is used for real instead of its fake.
 */
import type { Logger } from 'pino';
import type { AllocatorConfig } from '../../actors/allocator/index.ts';
import type { BillingConfig } from '../../actors/billing/index.ts';
import type { SessionConfig } from '../../actors/session/index.ts';
import type { AzureSettings } from './azure.ts';

export interface TelegramSettings {
  token: string;
  /** Default https://api.telegram.org */
  apiRoot?: string;
  /** Default polling (no public URL needed); webhook needs `webhookUrl`. */
  mode?: 'webhook' | 'polling';
  webhookUrl?: string;
  webhookSecret?: string;
}

export interface RazorpaySettings {
  keyId: string;
  keySecret: string;
  webhookSecret: string;
  /** Default https://api.razorpay.com */
  apiUrl?: string;
}

export interface LocalTimings {
  /** ARM fake: how long a create takes. Default 3 s. */
  lroLatencyMs?: number;
  /** ARM fake: polls before an operation ends. Default 2. */
  lroPolls?: number;
  /** SDK: pause between polls of a long-running operation. Default 1 s. */
  azurePollMs?: number;
  /** Simulated agent: from VM running to `ready`. Default 5 s. */
  agentBootMs?: number;
  /** Simulated agent: between heartbeats. Default 30 s. */
  agentHeartbeatMs?: number;
  /** Worker: how often due durable timers are looked for. */
  timerPollMs?: number;
  /** Gateway: pause between Telegram sends to one chat. Default 1 s (Telegram's limit). */
  perChatIntervalMs?: number;
}

export interface LocalOptions {
  log: Logger;
  /** Aborted while starting (Ctrl-C): what started is stopped and startLocal rejects. */
  signal?: AbortSignal;
  /** Absent: a nats-server is started from deploy/nats/respawn.conf on `natsPort`. */
  natsUrl?: string;
  /** Default 4223. */
  natsPort?: number;
  natsServerBin?: string;
  /** Default postgres://postgres@127.0.0.1:5432/respawn (created and migrated). */
  databaseUrl?: string;
  /** Default redis://127.0.0.1:6379 */
  redisUrl?: string;
  /** Redis key prefix of the gateway's rate limits. */
  rateLimitPrefix?: string;
  /** Address every local server listens on. Default 127.0.0.1. */
  host?: string;
  /** Gateway HTTP port, default 8080; 0 picks a free one. */
  gatewayPort?: number;
  /** Ports of the fakes (default 8443, 8081, 8082, 8090 for the sandbox page); 0: free. */
  ports?: { arm?: number; telegram?: number; razorpay?: number; sandbox?: number };
  /** Absent: the ARM fake. */
  azure?: AzureSettings;
  /** Absent: the Telegram Bot API fake. */
  telegram?: TelegramSettings;
  /** Absent: the Razorpay fake. */
  razorpay?: RazorpaySettings;
  /** The agents' master secret (the gateway's AGENT_TOKEN_SECRET). Default: random. */
  agentSecret?: string;
  /** The gateway's `/agent/report` as VMs reach it (real Azure: a public URL). Default: local. */
  agentReportUrl?: string;
  /** Run the simulated VM agents. Default: on with the ARM fake, off with real Azure. */
  agentSim?: boolean;
  /** Serve the sandbox chat page (Telegram fake only). Default true. */
  sandbox?: boolean;
  region?: string;
  timings?: LocalTimings;
  /** Overrides on the actors' defaults (admission stays on unless set here). */
  session?: Partial<SessionConfig>;
  billing?: Partial<BillingConfig>;
  allocator?: Partial<AllocatorConfig>;
}
