/**
 * `POST /agent/report`: a VM agent's report (`agent.report.v1`, contracts/agent.ts). It is
 * validated against the contract (400 otherwise), its `vmName`'s per-VM token must be in
 * X-Respawn-Agent-Token (checked by the injected verifier, in constant time), and it is
 * published unchanged with Nats-Msg-Id `agent-<id>` — so the `vmName` the session side reads
 * is the one that was authenticated.
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import {
  AgentReport,
  ErrorCodes,
  IngressSources,
  TerminalError,
  type MessageOf,
} from '../../contracts/index.ts';
import { Outcomes, Reasons, Sources, type IngressMetrics } from '../metrics.ts';
import type { IngressPublisher } from '../publish.ts';
import { headerValue, type AgentVerifier } from './auth.ts';
import { rawBody, refuse } from './common.ts';
import { tracedPost } from './tracing.ts';

export const AGENT_TOKEN_HEADER = 'x-respawn-agent-token';

export function agentMsgId(reportId: string): string {
  return `agent-${reportId}`;
}

export function registerAgentReport(
  app: FastifyInstance,
  deps: {
    verifyAgent: AgentVerifier;
    publish: IngressPublisher;
    metrics: IngressMetrics;
    log: Logger;
  },
): void {
  const source = Sources.agent;
  const post = tracedPost(app, source);
  post('/agent/report', async (request, reply) => {
    const body = rawBody(request);
    const given = headerValue(request.headers[AGENT_TOKEN_HEADER]);
    if (given === undefined || given.length === 0) {
      return refuse(deps, request, reply, {
        source,
        status: 401,
        reason: Reasons.badAgentToken,
        message: 'missing X-Respawn-Agent-Token',
      });
    }
    let report: MessageOf<typeof AgentReport>;
    try {
      report = AgentReport.decode(body);
    } catch (err) {
      const json = err instanceof TerminalError && err.code === ErrorCodes.invalidJson;
      return refuse(deps, request, reply, {
        source,
        status: 400,
        reason: json ? Reasons.invalidJson : Reasons.invalidBody,
        message: err instanceof Error ? err.message : 'not an agent.report.v1',
      });
    }
    let valid: boolean;
    try {
      valid = await deps.verifyAgent(report.vmName, given);
    } catch (err) {
      deps.metrics.requests.inc({ source, outcome: Outcomes.unavailable });
      deps.log.warn({ source, err, vmName: report.vmName }, 'agent token check failed');
      return reply.code(503).send({ error: 'unavailable', message: 'cannot check the token now' });
    }
    if (!valid) {
      return refuse(deps, request, reply, {
        source,
        status: 401,
        reason: Reasons.badAgentToken,
        message: `wrong agent token for VM ${report.vmName}`,
      });
    }
    const r = await deps.publish(IngressSources.agent, body, agentMsgId(report.id));
    if (!r.ok) {
      deps.metrics.requests.inc({ source, outcome: Outcomes.unavailable });
      deps.log.warn({ source, reportId: report.id, error: r.reason }, 'agent report not stored');
      return reply.code(503).send({ error: 'unavailable', message: 'not stored; retry later' });
    }
    deps.metrics.requests.inc({
      source,
      outcome: r.duplicate ? Outcomes.duplicate : Outcomes.published,
    });
    return reply.code(200).send({ ok: true, duplicate: r.duplicate });
  });
}
