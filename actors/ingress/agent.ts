/**
 * VM agent reports (`respawn.in.agent`) to session commands: the pure `routeAgentReport`
 * hosted by the generic ingress router.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { routeAgentReport } from './agent-route.ts';
import { createIngressRouter, type DeadLetterCounter, type IngressRouter } from './router.ts';

export interface AgentIngressOptions {
  nc: NatsConnection;
  log: Logger;
  /** Durable consumer name; defaults to `ingress-agent`. */
  durable?: string;
  retryDelayMs?: number;
  deadLetters?: DeadLetterCounter;
}

export function createAgentIngress(opts: AgentIngressOptions): IngressRouter {
  return createIngressRouter({
    nc: opts.nc,
    log: opts.log,
    source: 'agent',
    ...(opts.durable === undefined ? {} : { durable: opts.durable }),
    ...(opts.retryDelayMs === undefined ? {} : { retryDelayMs: opts.retryDelayMs }),
    ...(opts.deadLetters === undefined ? {} : { deadLetters: opts.deadLetters }),
    route: (data) => [routeAgentReport(data)],
  });
}
