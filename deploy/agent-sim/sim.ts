/**
 * A simulated fleet of VM agents, driven by the ARM fake: when a Respawn session VM is
 * running in the fake, its "agent" boots (after `bootDelayMs`), reads the VM's agent bootstrap
 * from its userData as the reference agent does (where to report, which VM, session and player,
 * its token; a VM without one gets no agent, as on Azure), reports `ready` there with the VM's public IP (its private IP, with a warning, when
 * its NIC has none, as the reference agent does), port 47989 and a fresh pairing PIN, heartbeats every `heartbeatMs` (with `lastInputAt = now` while the player is
 * "playing"), relays the fake's Preempt scheduled event as a `preempt` report, and stops when
 * its VM is deleted or evicted. Each report carries its own id (the gateway's Nats-Msg-Id).
 */
import { randomInt, randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import type { Logger } from 'pino';
import {
  AgentReport,
  decodeAgentBootstrap,
  type AgentBootstrap,
  type MessageOf,
} from '../../contracts/index.ts';
import type { FakeVmEvent } from '../fakes/arm/index.ts';

/** The header the gateway reads the per-VM token from. */
export const AGENT_TOKEN_HEADER = 'X-Respawn-Agent-Token';
/** Sunshine's default streaming port, which the real agent reports. */
export const STREAM_PORT = 47989;
/** VMs whose `purpose` tag is this get an agent; others (e.g. disk builders) do not. */
export const SESSION_PURPOSE = 'respawn-session';

/** What the simulator needs from the ARM fake (its event feed and read-only state). */
export interface AgentSimSource {
  onEvent(listener: (event: FakeVmEvent) => void): () => void;
  state: {
    vm(name: string):
      | {
          name: string;
          tags: Record<string, string>;
          nics: { name: string }[];
          /** Base64 of the agent bootstrap, as Azure stores userData (null: none). */
          userData?: string | null;
        }
      | undefined;
    /** `publicIpName`: the public IP on the NIC's ipconfig, if any. */
    nic(name: string): { privateIp: string; publicIpName?: string | null } | undefined;
    /** The fake's public IPs (absent: none known, the private IP is reported). */
    publicIp?(name: string): { ipAddress: string } | undefined;
  };
}

export interface AgentSimOptions {
  arm: AgentSimSource;
  log: Logger;
  /** From "VM running" to the `ready` report. Default 5 s. */
  bootDelayMs?: number;
  /** Between heartbeats. Default 30 s. */
  heartbeatMs?: number;
  /** Whether the player is giving input on this VM (heartbeats then carry lastInputAt). */
  playing?: (vmName: string) => boolean;
  /** Pause before a report the gateway did not take is sent again. Default 1 s. */
  retryMs?: number;
  /** Attempts per report before it is given up (logged). Default 10. */
  maxAttempts?: number;
  now?: () => Date;
}

export interface AgentView {
  vmName: string;
  sessionId: string;
  playerId: string;
  host: string;
  pin: string;
  ready: boolean;
  reports: number;
}

export interface AgentSim {
  start(): void;
  /** Stops every agent and waits for reports in flight. */
  stop(): Promise<void>;
  agents(): AgentView[];
}

interface Agent extends AgentView {
  timers: Set<NodeJS.Timeout>;
  stopped: boolean;
  /** From the bootstrap: where to report, and the per-VM token. */
  reportUrl: URL;
  token: string;
}

/** The VM's bootstrap, or why there is none (the VM then has no agent, as on Azure). */
function bootstrapOf(userData: string | null | undefined): AgentBootstrap | string {
  const encoded = userData?.trim() ?? '';
  if (encoded === '') return 'no userData: the worker gave this VM no agent bootstrap';
  try {
    return decodeAgentBootstrap(Buffer.from(encoded, 'base64').toString('utf8'));
  } catch (err) {
    return `userData: ${(err as Error).message}`;
  }
}

/** One report request's deadline. */
const REQUEST_TIMEOUT_MS = 10_000;

/**
 * POSTs one report and reads the status, over kept-alive sockets. node:http rather than
 * fetch: a load run sends hundreds of reports a second from this process, and fetch's web
 * streams cost several times the CPU of the request itself.
 */
function postReport(
  url: URL,
  agent: http.Agent,
  headers: Record<string, string>,
  body: Uint8Array,
): Promise<number> {
  const lib = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    const req = lib.request(
      url,
      {
        method: 'POST',
        agent,
        headers: { ...headers, 'content-length': String(body.byteLength) },
        timeout: REQUEST_TIMEOUT_MS,
      },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new Error('report timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

type ReportFields = Omit<
  MessageOf<typeof AgentReport>,
  'type' | 'id' | 'vmName' | 'sessionId' | 'playerId' | 'at'
>;

export function createAgentSim(opts: AgentSimOptions): AgentSim {
  const log = opts.log.child({ component: 'agent-sim' });
  const bootDelayMs = opts.bootDelayMs ?? 5_000;
  const heartbeatMs = opts.heartbeatMs ?? 30_000;
  const retryMs = opts.retryMs ?? 1_000;
  const maxAttempts = opts.maxAttempts ?? 10;
  const now = opts.now ?? (() => new Date());
  const playing = opts.playing ?? (() => true);
  const agents = new Map<string, Agent>();
  const inFlight = new Set<Promise<void>>();
  let unsubscribe: (() => void) | undefined;
  let closed = false;
  const httpAgent = new http.Agent({ keepAlive: true });
  const httpsAgent = new https.Agent({ keepAlive: true });

  const later = (agent: Agent, ms: number, fn: () => void): void => {
    if (agent.stopped) return;
    const t = setTimeout(() => {
      agent.timers.delete(t);
      fn();
    }, ms);
    agent.timers.add(t);
  };

  async function post(agent: Agent, fields: ReportFields): Promise<boolean> {
    let body: Uint8Array;
    try {
      body = AgentReport.encode({
        id: `sim-${randomUUID()}`,
        vmName: agent.vmName,
        sessionId: agent.sessionId,
        playerId: agent.playerId,
        at: now().toISOString(),
        ...fields,
      });
    } catch (err) {
      // A report the contract refuses is a bug here; it must not take the process down.
      log.error({ err, vm: agent.vmName, kind: fields.kind }, 'report not sendable');
      return false;
    }
    const url = agent.reportUrl;
    // The same report (same id) is retried, so the gateway stores it once.
    for (let attempt = 1; attempt <= maxAttempts && !closed; attempt++) {
      try {
        const status = await postReport(
          url,
          url.protocol === 'https:' ? httpsAgent : httpAgent,
          { 'content-type': 'application/json', [AGENT_TOKEN_HEADER]: agent.token },
          body,
        );
        if (status >= 200 && status < 300) {
          agent.reports++;
          return true;
        }
        if (status < 500 && status !== 429) {
          log.warn({ vm: agent.vmName, kind: fields.kind, status }, 'report refused');
          return false;
        }
      } catch (err) {
        log.debug({ err, vm: agent.vmName }, 'gateway unreachable');
      }
      await new Promise((r) => setTimeout(r, retryMs));
    }
    log.warn({ vm: agent.vmName, kind: fields.kind }, 'report given up');
    return false;
  }

  function send(agent: Agent, fields: ReportFields): Promise<boolean> {
    const p = post(agent, fields);
    const tracked = p.then(() => undefined);
    inFlight.add(tracked);
    void tracked.finally(() => inFlight.delete(tracked));
    return p;
  }

  function heartbeat(agent: Agent): void {
    later(agent, heartbeatMs, () => {
      const fields: ReportFields = playing(agent.vmName)
        ? { kind: 'heartbeat', lastInputAt: now().toISOString() }
        : { kind: 'heartbeat' };
      void send(agent, fields).then(() => heartbeat(agent));
    });
  }

  function boot(vmName: string, tags: Record<string, string>): void {
    if (tags.purpose !== SESSION_PURPOSE || agents.has(vmName)) return;
    const vm = opts.arm.state.vm(vmName);
    const bootstrap = bootstrapOf(vm?.userData);
    if (typeof bootstrap === 'string') {
      log.warn({ vm: vmName, why: bootstrap }, 'session VM without an agent bootstrap; no agent');
      return;
    }
    const { sessionId, playerId } = bootstrap;
    const nic = vm?.nics[0] === undefined ? undefined : opts.arm.state.nic(vm.nics[0].name);
    const pipName = nic?.publicIpName ?? null;
    const publicIp = pipName === null ? undefined : opts.arm.state.publicIp?.(pipName)?.ipAddress;
    if (publicIp === undefined) {
      log.warn(
        { vm: vmName, privateIp: nic?.privateIp ?? null },
        'no public IP on this VM: reporting the private IP',
      );
    }
    const agent: Agent = {
      vmName,
      sessionId,
      playerId,
      host: publicIp ?? nic?.privateIp ?? '127.0.0.1',
      pin: String(randomInt(1000, 10_000)),
      ready: false,
      reports: 0,
      timers: new Set(),
      stopped: false,
      reportUrl: new URL(bootstrap.reportUrl),
      token: bootstrap.token,
    };
    agents.set(vmName, agent);
    log.info({ vm: vmName, player: playerId, host: agent.host }, 'agent booting');
    later(agent, bootDelayMs, () => {
      void send(agent, {
        kind: 'ready',
        host: agent.host,
        port: STREAM_PORT,
        pin: agent.pin,
      }).then((ok) => {
        agent.ready = ok;
        if (ok) log.info({ vm: vmName }, 'agent reported ready');
        heartbeat(agent);
      });
    });
  }

  function halt(vmName: string): void {
    const agent = agents.get(vmName);
    if (agent === undefined) return;
    agent.stopped = true;
    for (const t of agent.timers) clearTimeout(t);
    agent.timers.clear();
    agents.delete(vmName);
    log.info({ vm: vmName }, 'agent stopped with its VM');
  }

  function onEvent(e: FakeVmEvent): void {
    if (closed) return;
    switch (e.type) {
      case 'vm.running':
        boot(e.vmName, e.tags);
        return;
      case 'vm.preempt': {
        const agent = agents.get(e.vmName);
        if (agent !== undefined) {
          // Scheduled Events write NotBefore as an HTTP date; reports carry ISO-8601.
          const at = Date.parse(e.notBefore);
          const notBefore = Number.isNaN(at) ? undefined : new Date(at).toISOString();
          void send(agent, {
            kind: 'preempt',
            eventId: e.eventId,
            ...(notBefore === undefined ? {} : { notBefore }),
          });
        }
        return;
      }
      case 'vm.evicted':
      case 'vm.deleted':
      case 'vm.failed':
        halt(e.vmName);
        return;
    }
  }

  return {
    start() {
      unsubscribe ??= opts.arm.onEvent(onEvent);
    },
    async stop() {
      closed = true;
      unsubscribe?.();
      for (const name of [...agents.keys()]) halt(name);
      await Promise.all([...inFlight]);
      httpAgent.destroy();
      httpsAgent.destroy();
    },
    agents: () =>
      [...agents.values()].map(
        ({ timers: _t, stopped: _s, reportUrl: _u, token: _k, ...view }) => ({ ...view }),
      ),
  };
}
