/**
 * The agent's configuration, from its environment (set by the VM image's service unit), validated
 * at start: every bad variable is named in one error. Who the VM is and where it reports are not
 * configured here: they come from Azure (userData through IMDS).
 */
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { z } from 'zod';
import type { AgentOptions } from './agent.ts';
import { commandIdleSource, noIdleSource } from './host.ts';
import { IMDS_DEFAULT_URL } from './imds.ts';

const int = (min: number, max: number, dflt: number) =>
  z.coerce.number().int().min(min).max(max).default(dflt);

export const AgentEnv = z.object({
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** IMDS; the ARM fake's URL in tests and the sandbox. */
  RESPAWN_AGENT_IMDS_URL: z.url({ protocol: /^https?$/ }).default(IMDS_DEFAULT_URL),
  /** A CA file to trust for IMDS (the ARM fake's self-signed certificate); Azure needs none. */
  RESPAWN_AGENT_IMDS_CA_FILE: z.string().min(1).optional(),
  /** ARM fake only: the VM this agent plays (sent as `x-fake-vm`). Never set on Azure. */
  RESPAWN_AGENT_FAKE_VM: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a VM name')
    .optional(),
  /** Where the streaming host (Sunshine) listens; `ready` waits until it accepts a connection. */
  RESPAWN_AGENT_STREAM_HOST: z.string().min(1).default('127.0.0.1'),
  RESPAWN_AGENT_STREAM_PORT: int(1, 65535, 47989),
  /** The pairing PIN, written here (mode 0640) for Sunshine's setup to read. */
  RESPAWN_AGENT_PIN_FILE: z.string().min(1).default('/var/lib/respawn-agent/pairing-pin'),
  RESPAWN_AGENT_HEARTBEAT_SECONDS: int(1, 3600, 30),
  /** Prints idle milliseconds (e.g. `xprintidle`); empty: heartbeats carry no lastInputAt. */
  RESPAWN_AGENT_IDLE_COMMAND: z.string().default('xprintidle'),
  RESPAWN_AGENT_EVENTS_POLL_MS: int(100, 60_000, 1_000),
  RESPAWN_AGENT_READY_POLL_MS: int(100, 60_000, 1_000),
  /** Attempts of one report before it is given up (logged). */
  RESPAWN_AGENT_MAX_ATTEMPTS: int(1, 100, 8),
  /** First pause between attempts; it doubles up to RESPAWN_AGENT_RETRY_MAX_MS. */
  RESPAWN_AGENT_RETRY_MS: int(10, 60_000, 500),
  RESPAWN_AGENT_RETRY_MAX_MS: int(10, 600_000, 10_000),
  RESPAWN_AGENT_HTTP_TIMEOUT_MS: int(100, 120_000, 5_000),
});
export type AgentEnv = z.infer<typeof AgentEnv>;

export interface AgentConfig extends AgentEnv {
  /** The contents of RESPAWN_AGENT_IMDS_CA_FILE. */
  imdsCa: string | undefined;
}

export class AgentConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'AgentConfigError';
  }
}

export function loadAgentConfig(env: NodeJS.ProcessEnv): AgentConfig {
  const r = AgentEnv.safeParse(env);
  const lines = r.success ? [] : r.error.issues.map((i) => `  ${i.path.join('.')}: ${i.message}`);
  let imdsCa: string | undefined;
  const caFile = env.RESPAWN_AGENT_IMDS_CA_FILE;
  if (caFile !== undefined && caFile !== '') {
    try {
      imdsCa = readFileSync(caFile, 'utf8');
    } catch (err) {
      const code = err instanceof Error && 'code' in err ? String(err.code) : 'unreadable';
      lines.push(`  RESPAWN_AGENT_IMDS_CA_FILE: cannot read ${caFile} (${code})`);
    }
  }
  if (r.success && r.data.RESPAWN_AGENT_RETRY_MAX_MS < r.data.RESPAWN_AGENT_RETRY_MS) {
    lines.push('  RESPAWN_AGENT_RETRY_MAX_MS: must be at least RESPAWN_AGENT_RETRY_MS');
  }
  if (!r.success || lines.length > 0) {
    throw new AgentConfigError(`invalid configuration:\n${lines.join('\n')}`);
  }
  return { ...r.data, imdsCa };
}

/** The options startAgent takes, from a loaded configuration. */
export function agentOptions(cfg: AgentConfig, log: Logger): AgentOptions {
  return {
    imdsUrl: cfg.RESPAWN_AGENT_IMDS_URL,
    ...(cfg.imdsCa === undefined ? {} : { imdsCa: cfg.imdsCa }),
    ...(cfg.RESPAWN_AGENT_FAKE_VM === undefined ? {} : { fakeVm: cfg.RESPAWN_AGENT_FAKE_VM }),
    streamHost: cfg.RESPAWN_AGENT_STREAM_HOST,
    streamPort: cfg.RESPAWN_AGENT_STREAM_PORT,
    pinFile: cfg.RESPAWN_AGENT_PIN_FILE,
    heartbeatMs: cfg.RESPAWN_AGENT_HEARTBEAT_SECONDS * 1000,
    idle:
      cfg.RESPAWN_AGENT_IDLE_COMMAND.trim() === ''
        ? noIdleSource
        : commandIdleSource(cfg.RESPAWN_AGENT_IDLE_COMMAND, log),
    eventsPollMs: cfg.RESPAWN_AGENT_EVENTS_POLL_MS,
    readyPollMs: cfg.RESPAWN_AGENT_READY_POLL_MS,
    maxAttempts: cfg.RESPAWN_AGENT_MAX_ATTEMPTS,
    retryBaseMs: cfg.RESPAWN_AGENT_RETRY_MS,
    retryMaxMs: cfg.RESPAWN_AGENT_RETRY_MAX_MS,
    httpTimeoutMs: cfg.RESPAWN_AGENT_HTTP_TIMEOUT_MS,
    log,
  };
}
