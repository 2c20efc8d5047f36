/**
 * The reference VM agent: runs on a player's GPU VM next to the streaming host and tells
 * Respawn's gateway what happens on it (docs/agent.md, docs/sessions.md).
 *
 * 1. Bootstrap from IMDS: userData (who it is, where to report, its token) and the host to
 *    report: the first NIC's public IP, else (with a warning) its private IP. Fails with
 *    AgentBootstrapError when the VM has no usable bootstrap.
 * 2. Writes a fresh pairing PIN where Sunshine's setup reads it.
 * 3. `ready` (host, port, PIN) once the streaming host accepts a TCP connection.
 * 4. `heartbeat` every `heartbeatMs` after that, with `lastInputAt` when the idle source knows.
 * 5. Polls Scheduled Events; a `Preempt` naming this VM is reported once as `preempt`, and
 *    approved (StartRequests) only after the gateway accepted the report. Heartbeats end there.
 *
 * A refused `ready` (wrong token: a 4xx) ends the agent (`finished` → `refused`): nothing it
 * could send would be taken. `stop()` is the graceful end (SIGTERM).
 */
import { randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import type { AgentBootstrap } from '../../contracts/index.ts';
import { newPin, tcpAnswers, writePin, type IdleSource } from './host.ts';
import { AgentBootstrapError, ImdsError, createImdsClient, type ScheduledEvent } from './imds.ts';
import { backoffMs, createReporter, SendOutcomes, type ReportFields } from './reporter.ts';

export interface AgentOptions {
  /** IMDS base URL (Azure: http://169.254.169.254). */
  imdsUrl: string;
  /** A CA to trust for IMDS (the ARM fake's). */
  imdsCa?: string;
  /** ARM fake only: the VM this agent plays. */
  fakeVm?: string;
  streamHost: string;
  streamPort: number;
  pinFile: string;
  heartbeatMs: number;
  idle: IdleSource;
  eventsPollMs: number;
  readyPollMs: number;
  maxAttempts: number;
  retryBaseMs: number;
  retryMaxMs: number;
  httpTimeoutMs: number;
  /** How long stop() lets a request in flight finish before aborting it. */
  stopGraceMs?: number;
  log: Logger;
  now?: () => Date;
}

export const AgentOutcomes = { stopped: 'stopped', refused: 'refused' } as const;
export type AgentOutcome = (typeof AgentOutcomes)[keyof typeof AgentOutcomes];

export interface AgentView {
  vmName: string;
  sessionId: string;
  playerId: string;
  host: string;
  port: number;
  /** Connection attempts to the streaming host so far. */
  streamProbes: number;
  ready: boolean;
  preempted: boolean;
  accepted: { ready: number; heartbeat: number; preempt: number };
}

export interface Agent {
  view(): AgentView;
  /** Resolves when the agent ends: stopped, or refused by the gateway. */
  finished: Promise<AgentOutcome>;
  stop(): Promise<void>;
}

/** Report ids travel as Nats-Msg-Id `agent-<id>`; an event's id makes its report's id. */
function preemptReportId(eventId: string): string {
  return `preempt-${eventId.replace(/[^A-Za-z0-9_-]/g, '-')}`.slice(0, 128);
}

function isPreemptFor(e: ScheduledEvent, vmName: string): boolean {
  return (
    e.EventType === 'Preempt' && e.Resources.some((r) => r.toLowerCase() === vmName.toLowerCase())
  );
}

export async function startAgent(opts: AgentOptions): Promise<Agent> {
  const now = opts.now ?? (() => new Date());
  const sleeps = new AbortController();
  const requests = new AbortController();
  let stopping = false;
  const sleep = (ms: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (stopping) return resolve(false);
      const done = (): void => {
        clearTimeout(t);
        sleeps.signal.removeEventListener('abort', done);
        resolve(!stopping);
      };
      const t = setTimeout(done, ms);
      sleeps.signal.addEventListener('abort', done);
    });
  const imds = createImdsClient({
    baseUrl: opts.imdsUrl,
    ...(opts.imdsCa === undefined ? {} : { ca: opts.imdsCa }),
    ...(opts.fakeVm === undefined ? {} : { fakeVm: opts.fakeVm }),
    timeoutMs: opts.httpTimeoutMs,
    signal: requests.signal,
  });

  /** IMDS may be slow to answer at boot: retry what it may answer later. */
  async function fromImds<T>(what: string, fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof ImdsError) || !err.retryable) {
          throw err instanceof AgentBootstrapError
            ? err
            : new AgentBootstrapError(`cannot read ${what}: ${(err as Error).message}`, err);
        }
        opts.log.warn({ what, attempt, err: err.message }, 'IMDS not answering yet; will retry');
        const ok = await sleep(backoffMs(attempt, opts.retryBaseMs, opts.retryMaxMs));
        if (!ok) throw new AgentBootstrapError(`stopped while reading ${what}`);
      }
    }
  }

  const bootstrap: AgentBootstrap = await fromImds('the bootstrap (userData)', () =>
    imds.bootstrap(),
  );
  const log = opts.log.child({
    vmName: bootstrap.vmName,
    session: bootstrap.sessionId,
    player: bootstrap.playerId,
  });
  const addresses = await fromImds('the IP addresses (network)', () => imds.addresses());
  // Players connect from home: the public IP when the VM has one. Without one (an operator's
  // relay or VPN in front, AZURE_VM_PUBLIC_IP=false) the private IP is all there is.
  const host = addresses.publicIp ?? addresses.privateIp;
  if (addresses.publicIp === null) {
    log.warn(
      { privateIp: addresses.privateIp },
      'no public IP on this VM: reporting the private IP, which players reach only through a relay or VPN',
    );
  }
  const pin = newPin();
  try {
    await writePin(opts.pinFile, pin);
  } catch (err) {
    throw new AgentBootstrapError(
      `cannot write the pairing PIN to ${opts.pinFile}: ${(err as Error).message}`,
      err,
    );
  }
  log.info(
    { host, port: opts.streamPort, pinFile: opts.pinFile, reportUrl: bootstrap.reportUrl },
    'agent bootstrapped',
  );

  const reporter = createReporter({
    bootstrap,
    log,
    now,
    maxAttempts: opts.maxAttempts,
    retryBaseMs: opts.retryBaseMs,
    retryMaxMs: opts.retryMaxMs,
    timeoutMs: opts.httpTimeoutMs,
    signal: requests.signal,
    sleep,
    stopping: () => stopping,
  });
  const state = { streamProbes: 0, ready: false, preempted: false };
  let finish: (o: AgentOutcome) => void = () => undefined;
  const finished = new Promise<AgentOutcome>((resolve) => (finish = resolve));
  let outcome: AgentOutcome = AgentOutcomes.stopped;

  async function readyThenHeartbeat(): Promise<void> {
    while (!(await tcpAnswers(opts.streamHost, opts.streamPort, 1_000))) {
      state.streamProbes += 1;
      if (state.streamProbes === 1 || state.streamProbes % 60 === 0) {
        log.info(
          { host: opts.streamHost, port: opts.streamPort, probes: state.streamProbes },
          'waiting for the streaming host',
        );
      }
      if (!(await sleep(opts.readyPollMs))) return;
    }
    state.streamProbes += 1;
    const ready: ReportFields = { kind: 'ready', host, port: opts.streamPort, pin };
    const id = `ready-${randomUUID()}`;
    for (;;) {
      const sent = await reporter.send(id, ready);
      if (sent === SendOutcomes.accepted) break;
      if (sent === SendOutcomes.stopped) return;
      if (sent === SendOutcomes.refused) {
        log.error('ready refused: this agent cannot report; ending (check AGENT_TOKEN_SECRET)');
        outcome = AgentOutcomes.refused;
        void stop();
        return;
      }
      // Given up for now: the same report (same id) again after a pause.
      if (!(await sleep(opts.retryMaxMs))) return;
    }
    state.ready = true;
    log.info({ host, port: opts.streamPort }, 'reported ready');
    while (await sleep(opts.heartbeatMs)) {
      if (state.preempted) return;
      const idleMs = await opts.idle();
      const fields: ReportFields =
        idleMs === undefined
          ? { kind: 'heartbeat' }
          : { kind: 'heartbeat', lastInputAt: new Date(now().getTime() - idleMs).toISOString() };
      await reporter.send(`hb-${randomUUID()}`, fields);
    }
  }

  async function watchEvents(): Promise<void> {
    const handled = new Set<string>();
    let failing = 0;
    do {
      let events: ScheduledEvent[];
      try {
        events = (await imds.scheduledEvents()).Events;
        failing = 0;
      } catch (err) {
        if (stopping) return;
        failing += 1;
        if (failing === 1 || failing % 60 === 0) {
          log.warn({ err: (err as Error).message, failing }, 'cannot read Scheduled Events');
        }
        continue;
      }
      for (const e of events) {
        if (handled.has(e.EventId) || !isPreemptFor(e, bootstrap.vmName)) continue;
        handled.add(e.EventId);
        const at = Date.parse(e.NotBefore ?? '');
        const notBefore = Number.isNaN(at) ? now().toISOString() : new Date(at).toISOString();
        log.warn({ eventId: e.EventId, notBefore }, 'Preempt scheduled: this VM will be evicted');
        const sent = await reporter.send(preemptReportId(e.EventId), {
          kind: 'preempt',
          eventId: e.EventId,
          notBefore,
        });
        if (sent === SendOutcomes.accepted) {
          state.preempted = true;
          try {
            await imds.startEvents([e.EventId]);
            log.info({ eventId: e.EventId }, 'Preempt reported and approved');
          } catch (err) {
            log.warn({ eventId: e.EventId, err: (err as Error).message }, 'approval failed');
          }
        } else if (sent === SendOutcomes.gaveUp) {
          // Try again at the next poll: the same id, so the gateway stores it once.
          handled.delete(e.EventId);
        }
      }
    } while (await sleep(opts.eventsPollMs));
  }

  const guarded = (name: string, loop: () => Promise<void>): Promise<void> =>
    loop().catch((err: unknown) => {
      // A bug, not a condition the agent expects: end it rather than limp on half-working.
      log.error({ err, loop: name }, 'agent loop failed');
      void stop();
    });
  const loops = Promise.all([guarded('ready', readyThenHeartbeat), guarded('events', watchEvents)]);
  let stopped: Promise<void> | undefined;
  function stop(): Promise<void> {
    stopped ??= (async () => {
      stopping = true;
      sleeps.abort();
      // A report in flight gets a moment to land; then it is cut.
      const grace = setTimeout(() => requests.abort(), opts.stopGraceMs ?? 2_000);
      await loops;
      clearTimeout(grace);
      log.info({ outcome }, 'agent stopped');
      finish(outcome);
    })();
    return stopped;
  }

  return {
    view: () => ({
      vmName: bootstrap.vmName,
      sessionId: bootstrap.sessionId,
      playerId: bootstrap.playerId,
      host,
      port: opts.streamPort,
      streamProbes: state.streamProbes,
      ready: state.ready,
      preempted: state.preempted,
      accepted: { ...reporter.accepted },
    }),
    finished,
    stop,
  };
}
