/**
 * The VM agent's contract: what the agent on each gaming VM reports to the gateway
 * (`POST /agent/report`, stored raw on `respawn.in.agent`), and the per-VM token it proves
 * itself with. The token is derived, not stored: HMAC-SHA256 of the VM name under a master
 * secret, handed to the VM at creation and recomputed by the gateway; rotating the master
 * revokes every token at once.
 */
import { createHmac } from 'node:crypto';
import { z } from 'zod';
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
  vmName: z.string().regex(/^[A-Za-z0-9-]{1,64}$/),
  sessionId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
  playerId: z.string().regex(/^[A-Za-z0-9_-]{1,64}$/),
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

export function agentToken(masterSecret: string, vmName: string): string {
  return createHmac('sha256', masterSecret).update(`respawn-agent:${vmName}`).digest('base64url');
}
