/**
 * The fake's Instance Metadata Service (IMDS): what a VM's agent reads at
 * `http://169.254.169.254/metadata/...` on Azure: Scheduled Events (GET, and POST StartRequests
 * to approve one), the VM's userData (base64 text) and its network interfaces. Every request
 * needs `Metadata: true` and an `api-version`, as on Azure.
 *
 * Azure's IMDS knows its caller by the address the request comes from; the fake serves every
 * fake VM from one server, so the caller names its VM itself, with the fake-only header
 * `x-fake-vm: <vm name>` (or the query parameter `vm`). Azure has neither.
 */
import type { IncomingMessage } from 'node:http';
import { z } from 'zod';
import { scheduledEvents, startEvents } from './eviction.ts';
import type { ArmReply, FakeVm } from './model.ts';
import { parseBody } from './wire.ts';
import { resourceKey as key, type World } from './world.ts';

/** The fake-only header naming the VM an IMDS request comes from. */
export const FAKE_VM_HEADER = 'x-fake-vm';

const StartRequests = z.object({ StartRequests: z.array(z.object({ EventId: z.string() })) });

function bad(message: string): ArmReply {
  return { status: 400, body: { error: 'Bad request', message } };
}

function callerVm(world: World, url: URL, req: IncomingMessage): FakeVm | undefined {
  const header = req.headers[FAKE_VM_HEADER];
  const name = (typeof header === 'string' ? header : undefined) ?? url.searchParams.get('vm');
  return name === null ? undefined : world.vms.get(key(name));
}

function notFound(): ArmReply {
  return {
    status: 404,
    body: { error: 'Not found', message: `no such VM (name it with ${FAKE_VM_HEADER})` },
  };
}

/**
 * IMDS's `network` document for the VM's NICs: each ipconfig's private IPv4 and, as Azure's
 * IMDS shows it, the public IP on it (`publicIpAddress`, empty when there is none).
 */
function network(world: World, vm: FakeVm): unknown {
  return {
    interface: vm.nics.map((ref) => {
      const nic = world.nics.get(key(ref.name));
      const ip = nic?.privateIp;
      const pipName = nic?.publicIpName ?? null;
      const pip = pipName === null ? undefined : world.publicIps.get(key(pipName));
      return {
        ipv4: {
          ipAddress:
            ip === undefined
              ? []
              : [{ privateIpAddress: ip, publicIpAddress: pip?.ipAddress ?? '' }],
          subnet: ip === undefined ? [] : [{ address: ip.replace(/\.\d+$/, '.0'), prefix: '24' }],
        },
        ipv6: { ipAddress: [] },
        macAddress: (nic?.macAddress ?? '').replace(/-/g, ''),
      };
    }),
  };
}

/** Serves `/metadata/...`; `path` is lower-cased, without a trailing slash. */
export function imds(
  world: World,
  method: string,
  path: string,
  url: URL,
  req: IncomingMessage,
  body: unknown,
): ArmReply {
  if (req.headers.metadata !== 'true') {
    return { status: 400, body: { error: 'Bad request. Required metadata header not specified' } };
  }
  if (!url.searchParams.get('api-version')) return bad('api-version is required');
  if (path === '/metadata/scheduledevents') {
    if (method === 'POST') {
      const started = startEvents(
        world,
        parseBody(StartRequests, body).StartRequests.map((r) => r.EventId),
      );
      return { status: started > 0 ? 200 : 404 };
    }
    return {
      status: 200,
      body: scheduledEvents(world, callerVm(world, url, req)?.name ?? ''),
    };
  }
  if (method !== 'GET') return { status: 405, body: { error: 'Method not allowed' } };
  const vm = callerVm(world, url, req);
  if (path === '/metadata/instance/compute/userdata') {
    if (vm === undefined) return notFound();
    // Azure answers with the base64 text it was given (empty when the VM has none).
    return { status: 200, text: vm.userData ?? '' };
  }
  if (path === '/metadata/instance/network') {
    if (vm === undefined) return notFound();
    return { status: 200, body: network(world, vm) };
  }
  return { status: 404, body: { error: 'Not found' } };
}
