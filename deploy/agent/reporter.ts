/**
 * Sends one report (`agent.report.v1`) to the gateway's `POST /agent/report` with the VM's
 * token in X-Respawn-Agent-Token. The same report (same `id`, so the gateway stores it once)
 * is retried with exponential backoff and jitter on network errors, 5xx and 429 (honouring
 * Retry-After); any other 4xx is final: the gateway will not take it however often it is sent,
 * so it is logged and given up at once. The token is never logged.
 */
import type { Logger } from 'pino';
import {
  AgentReport,
  type AgentBootstrap,
  type AgentReportKinds,
  type MessageOf,
} from '../../contracts/index.ts';
import { httpRequest, retryAfterMs } from './http.ts';

export const AGENT_TOKEN_HEADER = 'X-Respawn-Agent-Token';

export type ReportFields = Omit<
  MessageOf<typeof AgentReport>,
  'type' | 'id' | 'vmName' | 'sessionId' | 'playerId' | 'at'
>;

export const SendOutcomes = {
  /** The gateway stored it (2xx, a duplicate included). */
  accepted: 'accepted',
  /** A 4xx other than 429: wrong token, bad body. Never retried. */
  refused: 'refused',
  /** Every attempt failed for a passing reason (network, 5xx, 429). */
  gaveUp: 'gave_up',
  /** The agent is stopping. */
  stopped: 'stopped',
} as const;
export type SendOutcome = (typeof SendOutcomes)[keyof typeof SendOutcomes];

export interface ReporterOptions {
  bootstrap: AgentBootstrap;
  log: Logger;
  now: () => Date;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  timeoutMs: number;
  /** Aborts requests in flight. */
  signal: AbortSignal;
  /** Waits `ms` or less (when the agent stops); resolves false when stopping. */
  sleep: (ms: number) => Promise<boolean>;
  stopping: () => boolean;
}

export interface Reporter {
  send(id: string, fields: ReportFields): Promise<SendOutcome>;
  /** Reports the gateway accepted, by kind (for the agent's view). */
  accepted: Record<keyof typeof AgentReportKinds, number>;
}

export function backoffMs(attempt: number, baseMs: number, maxMs: number): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt - 1, 20));
  return Math.round(ceiling / 2 + (Math.random() * ceiling) / 2);
}

export function createReporter(opts: ReporterOptions): Reporter {
  const b = opts.bootstrap;
  const accepted = { ready: 0, heartbeat: 0, preempt: 0 };

  async function send(id: string, fields: ReportFields): Promise<SendOutcome> {
    const body = new TextDecoder().decode(
      AgentReport.encode({
        id,
        vmName: b.vmName,
        sessionId: b.sessionId,
        playerId: b.playerId,
        at: opts.now().toISOString(),
        ...fields,
      }),
    );
    const log = opts.log.child({ report: id, kind: fields.kind });
    for (let attempt = 1; attempt <= opts.maxAttempts; attempt++) {
      if (opts.stopping()) return SendOutcomes.stopped;
      let wait: number | undefined;
      try {
        const res = await httpRequest(b.reportUrl, {
          method: 'POST',
          headers: { 'content-type': 'application/json', [AGENT_TOKEN_HEADER]: b.token },
          body,
          timeoutMs: opts.timeoutMs,
          signal: opts.signal,
        });
        if (res.status >= 200 && res.status < 300) {
          accepted[fields.kind] += 1;
          log.debug({ attempt }, 'report accepted');
          return SendOutcomes.accepted;
        }
        if (res.status !== 429 && res.status < 500) {
          log.error(
            { status: res.status, answer: res.text.slice(0, 300) },
            'report refused by the gateway; not retried',
          );
          return SendOutcomes.refused;
        }
        wait = retryAfterMs(res.headers, Date.now());
        log.warn({ status: res.status, attempt }, 'gateway did not take the report; will retry');
      } catch (err) {
        if (opts.stopping()) return SendOutcomes.stopped;
        log.warn({ err: (err as Error).message, attempt }, 'gateway unreachable; will retry');
      }
      if (attempt === opts.maxAttempts) break;
      const delay = Math.min(
        opts.retryMaxMs,
        wait ?? backoffMs(attempt, opts.retryBaseMs, opts.retryMaxMs),
      );
      if (!(await opts.sleep(delay))) return SendOutcomes.stopped;
    }
    log.error({ attempts: opts.maxAttempts }, 'report given up after every attempt failed');
    return SendOutcomes.gaveUp;
  }

  return { send, accepted };
}
