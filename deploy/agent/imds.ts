/**
 * Azure's Instance Metadata Service as the agent uses it (every call with `Metadata: true`):
 *
 * - `GET /metadata/instance/compute/userData?api-version=2021-01-01&format=text`: the VM's
 *   userData, base64 text, which the allocator's Azure effects runner filled with the agent's
 *   bootstrap (contracts' `encodeAgentBootstrap`);
 * - `GET /metadata/instance/network?api-version=2021-02-01`: the NICs, for the first NIC's
 *   public IPv4 (`publicIpAddress`, empty without one) and private IPv4;
 * - `GET /metadata/scheduledevents?api-version=2020-07-01`: Scheduled Events (`Preempt` for a
 *   Spot eviction), and `POST` the same URL with `{"StartRequests":[{"EventId":…}]}` to approve
 *   an event once it is dealt with.
 *
 * IMDS answers 410, 429 and 5xx while it is busy or starting: those are `retryable`.
 */
import { z } from 'zod';
import { decodeAgentBootstrap, type AgentBootstrap } from '../../contracts/index.ts';
import { httpRequest, type HttpAnswer } from './http.ts';

export const IMDS_DEFAULT_URL = 'http://169.254.169.254';
export const USER_DATA_API = '2021-01-01';
export const NETWORK_API = '2021-02-01';
export const SCHEDULED_EVENTS_API = '2020-07-01';
/** Only the ARM fake reads it (it serves every fake VM from one address); Azure ignores it. */
export const FAKE_VM_HEADER = 'x-fake-vm';
const FIRST_EVENTS_CALL_MS = 120_000;

export class ImdsError extends Error {
  readonly status: number | null;
  readonly retryable: boolean;
  constructor(message: string, status: number | null, retryable: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'ImdsError';
    this.status = status;
    this.retryable = retryable;
  }
}

/** The bootstrap cannot be had or is unusable: the agent cannot run on this VM as it is. */
export class AgentBootstrapError extends Error {
  constructor(message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'AgentBootstrapError';
  }
}

const Network = z.looseObject({
  interface: z.array(
    z.looseObject({
      ipv4: z.looseObject({
        ipAddress: z.array(
          z.looseObject({
            privateIpAddress: z.string(),
            publicIpAddress: z.string().optional(),
          }),
        ),
      }),
    }),
  ),
});

const ScheduledEvents = z.looseObject({
  DocumentIncarnation: z.number(),
  Events: z.array(
    z.looseObject({
      EventId: z.string().min(1),
      EventType: z.string(),
      ResourceType: z.string().optional(),
      Resources: z.array(z.string()).default([]),
      EventStatus: z.string().optional(),
      NotBefore: z.string().optional(),
    }),
  ),
});
export type ScheduledEventsDocument = z.infer<typeof ScheduledEvents>;
export type ScheduledEvent = ScheduledEventsDocument['Events'][number];

export interface ImdsClientOptions {
  baseUrl: string;
  /** PEM to trust (the ARM fake serves IMDS over HTTPS with a self-signed certificate). */
  ca?: string;
  /** ARM fake only: the VM this agent plays (`x-fake-vm`). */
  fakeVm?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

export interface NicAddresses {
  privateIp: string;
  publicIp: string | null;
}

export interface ImdsClient {
  /** The agent's bootstrap from userData; AgentBootstrapError if absent or unusable. */
  bootstrap(): Promise<AgentBootstrap>;
  /** The primary NIC's private IPv4. */
  privateIp(): Promise<string>;
  /** The primary NIC's private IPv4 and its public IPv4 (null when it has none). */
  addresses(): Promise<NicAddresses>;
  scheduledEvents(): Promise<ScheduledEventsDocument>;
  /** Approves events (they may then start at once). */
  startEvents(eventIds: readonly string[]): Promise<void>;
}

function retryableStatus(status: number): boolean {
  return status === 410 || status === 429 || status >= 500;
}

export function createImdsClient(opts: ImdsClientOptions): ImdsClient {
  let eventsEnabled = false;
  const headers: Record<string, string> = {
    Metadata: 'true',
    ...(opts.fakeVm === undefined ? {} : { [FAKE_VM_HEADER]: opts.fakeVm }),
  };

  async function call(
    what: string,
    path: string,
    query: Record<string, string>,
    body?: unknown,
    timeoutMs = opts.timeoutMs,
  ): Promise<HttpAnswer> {
    const url = new URL(path, opts.baseUrl);
    for (const [k, v] of Object.entries(query)) url.searchParams.set(k, v);
    let answer: HttpAnswer;
    try {
      answer = await httpRequest(url, {
        method: body === undefined ? 'GET' : 'POST',
        headers: body === undefined ? headers : { ...headers, 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        timeoutMs,
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      });
    } catch (err) {
      throw new ImdsError(`IMDS ${what}: ${(err as Error).message}`, null, true, err);
    }
    if (answer.status < 200 || answer.status > 299) {
      throw new ImdsError(
        `IMDS ${what}: HTTP ${answer.status}`,
        answer.status,
        retryableStatus(answer.status),
      );
    }
    return answer;
  }

  function json<T>(what: string, schema: z.ZodType<T>, text: string): T {
    let raw: unknown;
    try {
      raw = JSON.parse(text) as unknown;
    } catch (err) {
      throw new ImdsError(`IMDS ${what}: not JSON`, 200, true, err);
    }
    const r = schema.safeParse(raw);
    if (!r.success) throw new ImdsError(`IMDS ${what}: unexpected shape`, 200, true, r.error);
    return r.data;
  }

  async function addresses(): Promise<NicAddresses> {
    const answer = await call('network', '/metadata/instance/network', {
      'api-version': NETWORK_API,
    });
    const doc = json('network', Network, answer.text);
    const first = doc.interface[0]?.ipv4.ipAddress[0];
    const ip = first?.privateIpAddress;
    if (ip === undefined || ip === '') {
      throw new ImdsError('IMDS network: no private IPv4 address on the first NIC', 200, true);
    }
    // Azure's IMDS writes an empty string when the ipconfig has no public IP.
    const pub = first?.publicIpAddress?.trim() ?? '';
    return { privateIp: ip, publicIp: pub === '' ? null : pub };
  }

  return {
    async bootstrap() {
      const answer = await call('userData', '/metadata/instance/compute/userData', {
        'api-version': USER_DATA_API,
        format: 'text',
      });
      const encoded = answer.text.trim();
      if (encoded === '') {
        throw new AgentBootstrapError(
          'this VM has no userData: it was not created by Respawn with the agent bootstrap ' +
            '(the worker needs AGENT_TOKEN_SECRET and RESPAWN_AGENT_REPORT_URL)',
        );
      }
      if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) {
        throw new AgentBootstrapError('userData is not base64');
      }
      try {
        return decodeAgentBootstrap(Buffer.from(encoded, 'base64').toString('utf8'));
      } catch (err) {
        throw new AgentBootstrapError(`userData: ${(err as Error).message}`, err);
      }
    },
    addresses,
    async privateIp() {
      return (await addresses()).privateIp;
    },
    async scheduledEvents() {
      // The first call enables Scheduled Events for the VM and may take up to two minutes.
      const answer = await call(
        'scheduledevents',
        '/metadata/scheduledevents',
        { 'api-version': SCHEDULED_EVENTS_API },
        undefined,
        eventsEnabled ? opts.timeoutMs : Math.max(opts.timeoutMs, FIRST_EVENTS_CALL_MS),
      );
      eventsEnabled = true;
      return json('scheduledevents', ScheduledEvents, answer.text);
    },
    async startEvents(eventIds) {
      await call(
        'StartRequests',
        '/metadata/scheduledevents',
        { 'api-version': SCHEDULED_EVENTS_API },
        { StartRequests: eventIds.map((EventId) => ({ EventId })) },
      );
    },
  };
}
