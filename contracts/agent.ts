/**
 * The VM agent's contract: what the agent on each gaming VM reports to the gateway
 * (`POST /agent/report`, stored raw on `respawn.in.agent`), and the per-VM token it proves
 * itself with. The token is derived, not stored: HMAC-SHA256 of the VM name under a master
 * secret, handed to the VM at creation and recomputed by the gateway; rotating the master
 * revokes every token at once.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
import {
  playerIdSchema as playerId,
  sessionIdSchema as sessionId,
  vmNameSchema as vmName,
} from './ids.ts';
import { defineMessage } from './message.ts';

export const AgentReportKinds = {
  ready: 'ready',
  heartbeat: 'heartbeat',
  preempt: 'preempt',
} as const;

const token = z.string().regex(/^[A-Za-z0-9_-]{1,128}$/);
const iso = z.iso.datetime();

export const AgentReport = defineMessage('agent.report.v1', {
  /** Unique per report (the agent's own id): the Nats-Msg-Id is `agent-<id>`. */
  id: token,
  vmName,
  sessionId,
  playerId,
  kind: z.enum(AgentReportKinds),
  at: iso,
  /** ready: how the player connects (Moonlight/Sunshine host, port, pairing PIN). */
  host: z.string().min(1).max(255).optional(),
  port: z.number().int().min(1).max(65535).optional(),
  pin: z
    .string()
    .regex(/^\d{4,8}$/)
    .optional(),
  /** heartbeat: when the player last gave input. */
  lastInputAt: iso.optional(),
  /** preempt: the Scheduled Event's id and NotBefore. */
  eventId: z.string().min(1).max(128).optional(),
  notBefore: iso.optional(),
});

/**
 * What a session VM learns about itself at boot, from Azure userData (read through IMDS):
 * where to report, which VM, session and player it serves, and its token. The allocator's
 * Azure effects runner writes it; the reference agent (deploy/agent/) reads it. Not a NATS
 * message: JSON text, which Azure stores base64-encoded.
 */
const AgentBootstrapSchema = z.object({
  v: z.literal(1),
  /** The gateway's `POST /agent/report`, as reachable from the VM. */
  reportUrl: z.url({ protocol: /^https?$/ }),
  vmName,
  sessionId,
  playerId,
  /** `agentToken(master, vmName)`: the X-Respawn-Agent-Token of every report. */
  token: z.string().regex(/^[A-Za-z0-9_-]{1,128}$/),
});
export type AgentBootstrap = z.infer<typeof AgentBootstrapSchema>;

export function encodeAgentBootstrap(b: Omit<AgentBootstrap, 'v'>): string {
  return JSON.stringify(AgentBootstrapSchema.parse({ v: 1, ...b }));
}

/** Validates untrusted text; the error names the bad fields, never their values. */
export function decodeAgentBootstrap(text: string): AgentBootstrap {
  let raw: unknown;
  try {
    raw = JSON.parse(text) as unknown;
  } catch {
    throw new Error('agent bootstrap is not JSON');
  }
  const r = AgentBootstrapSchema.safeParse(raw);
  if (!r.success) {
    const fields = r.error.issues.map((i) => i.path.join('.') || '(root)');
    throw new Error(`agent bootstrap is invalid: ${[...new Set(fields)].join(', ')}`);
  }
  return r.data;
}

export function agentToken(masterSecret: string, vmName: string): string {
  return createHmac('sha256', masterSecret).update(`respawn-agent:${vmName}`).digest('base64url');
}
