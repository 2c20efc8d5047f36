/**
 * Microsoft.Network/publicIPAddresses in the fake: create (LRO), get, list, delete. An address
 * comes from the documentation ranges (203.0.113.0/24, then 198.51.100.0/24 and 192.0.2.0/24),
 * picked with the seed like the private IPs and unique while the pool lasts. A public IP on a
 * NIC's ipconfig cannot be deleted (Azure's `PublicIPAddressCannotBeDeleted`, 400).
 */
import { z } from 'zod';
import { ArmError, resourceNotFound } from './errors.ts';
import type { ArmReply, FakePublicIp } from './model.ts';
import { parseBody, validName } from './wire.ts';
import { resourceKey as key, type World } from './world.ts';

const TYPE = 'Microsoft.Network/publicIPAddresses';
const POOL = ['203.0.113', '198.51.100', '192.0.2'] as const;
const PER_RANGE = 254;

const PublicIpBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  sku: z.looseObject({ name: z.string().optional(), tier: z.string().optional() }).optional(),
  zones: z.array(z.string()).optional(),
  properties: z
    .looseObject({
      publicIPAllocationMethod: z.enum(['Static', 'Dynamic']).optional(),
      publicIPAddressVersion: z.string().optional(),
    })
    .optional(),
});

/**
 * A free address: a seeded host in 203.0.113.0/24, the next free one there, then in the other
 * ranges; once all are taken (a big load run), the seeded pick repeats.
 */
function allocate(world: World): string {
  const start = Math.floor(world.rng.next() * PER_RANGE);
  const taken = new Set([...world.publicIps.values()].map((p) => p.ipAddress));
  const at = (range: string, i: number): string => `${range}.${((start + i) % PER_RANGE) + 1}`;
  for (const range of POOL) {
    for (let i = 0; i < PER_RANGE; i++) if (!taken.has(at(range, i))) return at(range, i);
  }
  return at(POOL[0], 0);
}

export function publicIpView(world: World, pip: FakePublicIp): unknown {
  return {
    id: pip.id,
    name: pip.name,
    type: TYPE,
    location: world.location,
    tags: pip.tags,
    sku: { name: pip.sku, tier: 'Regional' },
    etag: `W/"${pip.createdAt}"`,
    properties: {
      provisioningState: pip.provisioningState,
      publicIPAddressVersion: 'IPv4',
      publicIPAllocationMethod: pip.allocationMethod,
      ipAddress: pip.ipAddress,
      idleTimeoutInMinutes: 4,
      ...(pip.ipConfigurationId === null ? {} : { ipConfiguration: { id: pip.ipConfigurationId } }),
    },
  };
}

export function putPublicIp(world: World, body: unknown, name: string): ArmReply {
  validName(name, 80);
  const b = parseBody(PublicIpBody, body);
  const version = b.properties?.publicIPAddressVersion ?? 'IPv4';
  if (version !== 'IPv4') {
    throw new ArmError(
      400,
      'InvalidParameter',
      `The fake serves IPv4 public IPs only, not ${version}.`,
    );
  }
  const existing = world.publicIps.get(key(name));
  if (existing !== undefined) {
    if (existing.provisioningState === 'Deleting') {
      throw new ArmError(
        409,
        'AnotherOperationInProgress',
        `Public IP address '${name}' is being deleted.`,
      );
    }
    // A retried create: same resource, same address; only tags change.
    existing.tags = { ...(b.tags ?? {}) };
    return { status: 200, body: publicIpView(world, existing) };
  }
  const sku = b.sku?.name ?? 'Standard';
  const pip: FakePublicIp = {
    name,
    id: world.resourceId('Microsoft.Network', 'publicIPAddresses', name),
    tags: { ...(b.tags ?? {}) },
    sku,
    allocationMethod:
      b.properties?.publicIPAllocationMethod ?? (sku === 'Standard' ? 'Static' : 'Dynamic'),
    ipAddress: allocate(world),
    ipConfigurationId: null,
    provisioningState: 'Updating',
    createdAt: world.iso(),
    operation: null,
  };
  world.publicIps.set(key(name), pip);
  pip.operation = world.startOperation('Microsoft.Network', () => {
    pip.provisioningState = 'Succeeded';
    return undefined;
  });
  return {
    status: 201,
    body: publicIpView(world, pip),
    headers: { 'Azure-AsyncOperation': world.operationUrl(pip.operation) },
  };
}

export function getPublicIp(world: World, name: string): ArmReply {
  const pip = world.publicIps.get(key(name));
  if (pip === undefined) throw resourceNotFound(TYPE, name, world.resourceGroup);
  if (pip.operation !== null) world.tick(pip.operation);
  return { status: 200, body: publicIpView(world, pip) };
}

export function listPublicIps(world: World): ArmReply {
  return {
    status: 200,
    body: { value: [...world.publicIps.values()].map((p) => publicIpView(world, p)) },
  };
}

export function deletePublicIp(world: World, name: string): ArmReply {
  const pip = world.publicIps.get(key(name));
  if (pip === undefined) return { status: 204 };
  if (pip.ipConfigurationId !== null) {
    throw new ArmError(
      400,
      'PublicIPAddressCannotBeDeleted',
      `Public IP address ${pip.id} can not be deleted since it is still allocated to resource ` +
        `${pip.ipConfigurationId}. In order to delete the public IP, disassociate/detach the ` +
        'Public IP address from the resource.',
    );
  }
  if (pip.provisioningState !== 'Deleting') {
    pip.provisioningState = 'Deleting';
    pip.operation = world.startOperation('Microsoft.Network', () => {
      world.publicIps.delete(key(name));
      return undefined;
    });
  }
  const url = pip.operation === null ? '' : world.operationUrl(pip.operation);
  return { status: 202, headers: { 'Azure-AsyncOperation': url, Location: url } };
}
