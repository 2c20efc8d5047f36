/**
 * The fake's HTTP face: ARM's URL shapes (subscription, resource group, provider, type, name),
 * `api-version` and a bearer token required, injected faults, and IMDS (`imds.ts`).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { deleteVm, getVm, listVms, putVm } from './compute.ts';
import { control } from './control.ts';
import { ArmError } from './errors.ts';
import { preempt } from './eviction.ts';
import { imds } from './imds.ts';
import type { ArmReply, ArmRequest, Fault } from './model.ts';
import { deleteNic, getNic, listNics, putNic } from './network.ts';
import { deletePublicIp, getPublicIp, listPublicIps, putPublicIp } from './public-ip.ts';
import { deleteNsg, getNsg, listNsgs, putNsg } from './security-group.ts';
import {
  deleteDisk,
  deleteSnapshot,
  getDisk,
  getSnapshot,
  listDisks,
  listSnapshots,
  putDisk,
  putSnapshot,
} from './storage.ts';
import type { World } from './world.ts';

const MAX_BODY_BYTES = 1_000_000;

const RESOURCE =
  /^\/subscriptions\/([^/]+)\/resourcegroups\/([^/]+)\/providers\/(microsoft\.compute|microsoft\.network)\/([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?$/i;
const USAGES =
  /^\/subscriptions\/([^/]+)\/providers\/microsoft\.compute\/locations\/([^/]+)\/usages$/i;
const OPERATION =
  /^\/subscriptions\/([^/]+)\/providers\/(microsoft\.compute|microsoft\.network)\/locations\/([^/]+)\/operations\/([^/]+)$/i;

const USAGE_LABELS: Record<string, string> = {
  cores: 'Total Regional vCPUs',
  lowPriorityCores: 'Total Regional Low-priority vCPUs',
};

type Handler = (world: World, req: ArmRequest, name: string | undefined) => ArmReply;

function byName(fn: (world: World, req: ArmRequest, name: string) => ArmReply): Handler {
  return (world, req, name) => {
    if (name === undefined)
      throw new ArmError(405, 'MethodNotAllowed', 'A resource name is required.');
    return fn(world, req, name);
  };
}

const HANDLERS: Record<string, Partial<Record<string, Handler>>> = {
  virtualmachines: {
    PUT: byName(putVm),
    GET: (w, r, n) => (n === undefined ? listVms(w) : getVm(w, r, n)),
    DELETE: byName((w, _r, n) => deleteVm(w, n)),
    POST: byName((w, r, n) => {
      if (r.action?.toLowerCase() !== 'simulateeviction') {
        throw new ArmError(
          400,
          'InvalidParameter',
          `Action '${r.action ?? ''}' is not supported by the fake.`,
        );
      }
      preempt(w, n);
      return { status: 204 };
    }),
  },
  disks: {
    PUT: byName((w, r, n) => putDisk(w, r.body, n)),
    GET: (w, _r, n) => (n === undefined ? listDisks(w) : getDisk(w, n)),
    DELETE: byName((w, _r, n) => deleteDisk(w, n)),
  },
  snapshots: {
    PUT: byName((w, r, n) => putSnapshot(w, r.body, n)),
    GET: (w, _r, n) => (n === undefined ? listSnapshots(w) : getSnapshot(w, n)),
    DELETE: byName((w, _r, n) => deleteSnapshot(w, n)),
  },
  networkinterfaces: {
    PUT: byName((w, r, n) => putNic(w, r.body, n)),
    GET: (w, _r, n) => (n === undefined ? listNics(w) : getNic(w, n)),
    DELETE: byName((w, _r, n) => deleteNic(w, n)),
  },
  publicipaddresses: {
    PUT: byName((w, r, n) => putPublicIp(w, r.body, n)),
    GET: (w, _r, n) => (n === undefined ? listPublicIps(w) : getPublicIp(w, n)),
    DELETE: byName((w, _r, n) => deletePublicIp(w, n)),
  },
  networksecuritygroups: {
    PUT: byName((w, r, n) => putNsg(w, r.body, n)),
    GET: (w, _r, n) => (n === undefined ? listNsgs(w) : getNsg(w, n)),
    DELETE: byName((w, _r, n) => deleteNsg(w, n)),
  },
};

const PROVIDER_OF: Record<string, string> = {
  virtualmachines: 'microsoft.compute',
  disks: 'microsoft.compute',
  snapshots: 'microsoft.compute',
  networkinterfaces: 'microsoft.network',
  publicipaddresses: 'microsoft.network',
  networksecuritygroups: 'microsoft.network',
};

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_BODY_BYTES) {
        reject(new ArmError(413, 'RequestEntityTooLarge', 'The request body is too large.'));
        req.destroy();
      } else chunks.push(chunk);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function parseJsonBody(text: string): unknown {
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new ArmError(400, 'InvalidRequestContent', 'The request content is not valid JSON.');
  }
}

function takeFault(
  world: World,
  method: string,
  resource: string,
  name: string | undefined,
): Fault | undefined {
  const i = world.faults.findIndex(
    (f) =>
      (f.method === undefined || f.method === method) &&
      (f.resource === undefined || f.resource.toLowerCase() === resource) &&
      (f.name === undefined || f.name.toLowerCase() === name?.toLowerCase()),
  );
  const fault = world.faults[i];
  if (fault === undefined) return undefined;
  const left = (fault.times ?? 1) - 1;
  if (left <= 0) world.faults.splice(i, 1);
  else fault.times = left;
  return fault;
}

function faultError(fault: Fault): ArmError {
  const status = fault.status ?? 500;
  const code = fault.code ?? (status === 429 ? 'TooManyRequests' : 'InternalServerError');
  const message =
    fault.message ??
    (status === 429 ? 'The request was throttled.' : 'An internal error occurred.');
  const headers: Record<string, string> =
    fault.retryAfterSeconds === undefined ? {} : { 'Retry-After': String(fault.retryAfterSeconds) };
  return new ArmError(status, code, message, headers);
}

function send(res: ServerResponse, world: World, reply: ArmReply): void {
  const headers: Record<string, string> = { 'x-ms-request-id': world.rng.uuid(), ...reply.headers };
  if (reply.text !== undefined) {
    headers['Content-Type'] = 'text/plain; charset=utf-8';
    res.writeHead(reply.status, headers).end(reply.text);
    return;
  }
  if (reply.body === undefined) {
    res.writeHead(reply.status, headers).end();
    return;
  }
  headers['Content-Type'] = 'application/json; charset=utf-8';
  res.writeHead(reply.status, headers).end(JSON.stringify(reply.body));
}

async function route(
  world: World,
  req: IncomingMessage,
  url: URL,
  hang: () => null,
): Promise<ArmReply | null> {
  const method = (req.method ?? 'GET').toUpperCase();
  const path = url.pathname.replace(/\/+$/, '');
  const body = parseJsonBody(await readBody(req));
  if (path.toLowerCase() === '/healthz') return { status: 200, body: { ok: true } };
  if (path.toLowerCase().startsWith('/metadata/'))
    return imds(world, method, path.toLowerCase(), url, req, body);
  if (path.toLowerCase().startsWith('/_fake/')) return control(world, method, path, body);

  if (!/^Bearer \S+/.test(req.headers.authorization ?? '')) {
    throw new ArmError(
      401,
      'AuthenticationFailed',
      "Authentication failed. The 'Authorization' header is missing.",
    );
  }
  if (!url.searchParams.get('api-version')) {
    throw new ArmError(
      400,
      'MissingApiVersionParameter',
      'The api-version query parameter (?api-version=) is required for all requests.',
    );
  }
  const checkScope = (sub: string, rg?: string): void => {
    if (decodeURIComponent(sub) !== world.subscriptionId) {
      throw new ArmError(
        404,
        'SubscriptionNotFound',
        `The subscription '${sub}' could not be found.`,
      );
    }
    if (
      rg !== undefined &&
      decodeURIComponent(rg).toLowerCase() !== world.resourceGroup.toLowerCase()
    ) {
      throw new ArmError(
        404,
        'ResourceGroupNotFound',
        `Resource group '${rg}' could not be found.`,
      );
    }
  };

  const op = OPERATION.exec(path);
  if (op !== null) {
    checkScope(op[1] ?? '');
    const fault = takeFault(world, method, 'operations', undefined);
    if (fault?.hang === true) return hang();
    if (fault !== undefined) throw faultError(fault);
    const found = world.operations.get(decodeURIComponent(op[4] ?? ''));
    if (found === undefined) throw new ArmError(404, 'NotFound', 'The operation was not found.');
    world.tick(found);
    return {
      status: 200,
      body: {
        name: found.id,
        status: found.status,
        startTime: new Date(found.startedAt).toISOString(),
        ...(found.endedAt === undefined ? {} : { endTime: new Date(found.endedAt).toISOString() }),
        ...(found.error === undefined ? {} : { error: found.error }),
      },
    };
  }

  const usages = USAGES.exec(path);
  if (usages !== null) {
    checkScope(usages[1] ?? '');
    const fault = takeFault(world, method, 'usages', undefined);
    if (fault?.hang === true) return hang();
    if (fault !== undefined) throw faultError(fault);
    return {
      status: 200,
      body: {
        value: world.usage().map((u) => ({
          unit: 'Count',
          currentValue: u.current,
          limit: u.limit,
          name: { value: u.name, localizedValue: USAGE_LABELS[u.name] ?? `${u.name} vCPUs` },
        })),
      },
    };
  }

  const m = RESOURCE.exec(path);
  if (m === null)
    throw new ArmError(404, 'InvalidResourceType', `No resource type serves '${path}'.`);
  checkScope(m[1] ?? '', m[2] ?? '');
  const type = (m[4] ?? '').toLowerCase();
  const handler = HANDLERS[type]?.[method];
  if (PROVIDER_OF[type] !== m[3]?.toLowerCase() || handler === undefined) {
    throw new ArmError(
      400,
      'InvalidResourceType',
      `The fake does not serve ${method} ${m[3]}/${m[4]}.`,
    );
  }
  const name = m[5] === undefined ? undefined : decodeURIComponent(m[5]);
  const fault = takeFault(world, method, type, name);
  if (fault?.hang === true) return hang();
  const asyncFault =
    fault?.async === true && method === 'PUT'
      ? {
          code: fault.code ?? 'InternalExecutionError',
          message: fault.message ?? 'The operation failed.',
        }
      : undefined;
  if (fault !== undefined && asyncFault === undefined) throw faultError(fault);
  const request: ArmRequest = {
    method,
    name,
    action: m[6] === undefined ? undefined : decodeURIComponent(m[6]),
    query: url.searchParams,
    body,
    asyncFault,
  };
  return handler(world, request, name);
}

/** The request listener for the fake's HTTPS server. */
export function createRouter(world: World, hung: Set<ServerResponse>) {
  return (req: IncomingMessage, res: ServerResponse): void => {
    const url = new URL(req.url ?? '/', 'https://fake.invalid');
    const record = (status: number): void =>
      world.record({
        method: req.method ?? 'GET',
        path: url.pathname,
        query: Object.fromEntries(url.searchParams),
        status,
      });
    const hang = (): null => {
      hung.add(res);
      res.on('close', () => hung.delete(res));
      record(0);
      return null;
    };
    route(world, req, url, hang)
      .then((reply) => {
        if (reply === null) return;
        send(res, world, reply);
        record(reply.status);
      })
      .catch((err: unknown) => {
        const armError =
          err instanceof ArmError
            ? err
            : new ArmError(500, 'InternalServerError', `The fake failed: ${String(err)}`);
        send(res, world, {
          status: armError.status,
          body: armError.body(),
          headers: armError.headers,
        });
        record(armError.status);
      });
  };
}
