/** Microsoft.Network/networkInterfaces in the fake: create (LRO), get, list, delete. */
import { z } from 'zod';
import { ArmError, resourceNotFound } from './errors.ts';
import type { ArmReply, FakeNic } from './model.ts';
import { resourceKey as key, type World } from './world.ts';
import { parseBody, validName } from './wire.ts';

const TYPE = 'Microsoft.Network/networkInterfaces';

const NicBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  properties: z.looseObject({
    ipConfigurations: z
      .array(
        z.looseObject({
          name: z.string(),
          properties: z.looseObject({
            subnet: z.looseObject({ id: z.string() }),
            privateIPAllocationMethod: z.string().optional(),
          }),
        }),
      )
      .min(1),
  }),
});

export function nicView(world: World, nic: FakeNic): unknown {
  return {
    id: nic.id,
    name: nic.name,
    type: TYPE,
    location: world.location,
    tags: nic.tags,
    etag: `W/"${nic.macAddress}"`,
    properties: {
      provisioningState: nic.provisioningState,
      macAddress: nic.macAddress,
      primary: true,
      ipConfigurations: [
        {
          id: `${nic.id}/ipConfigurations/ipconfig1`,
          name: 'ipconfig1',
          properties: {
            provisioningState: nic.provisioningState,
            privateIPAddress: nic.privateIp,
            privateIPAllocationMethod: 'Dynamic',
            subnet: { id: nic.subnetId },
            primary: true,
          },
        },
      ],
      ...(nic.virtualMachineId === null ? {} : { virtualMachine: { id: nic.virtualMachineId } }),
    },
  };
}

export function putNic(world: World, body: unknown, name: string): ArmReply {
  validName(name, 80);
  const b = parseBody(NicBody, body);
  const subnetId = b.properties.ipConfigurations[0]?.properties.subnet.id ?? '';
  if (!/\/virtualNetworks\/[^/]+\/subnets\/[^/]+$/i.test(subnetId)) {
    throw new ArmError(
      400,
      'InvalidResourceReference',
      `Subnet reference '${subnetId}' is not a subnet id.`,
    );
  }
  const existing = world.nics.get(key(name));
  if (existing !== undefined) {
    if (existing.provisioningState === 'Deleting') {
      throw new ArmError(
        409,
        'AnotherOperationInProgress',
        `Network interface '${name}' is being deleted.`,
      );
    }
    existing.tags = { ...(b.tags ?? {}) };
    return { status: 200, body: nicView(world, existing) };
  }
  const n = (): number => 1 + Math.floor(world.rng.next() * 250);
  const nic: FakeNic = {
    name,
    id: world.resourceId('Microsoft.Network', 'networkInterfaces', name),
    tags: { ...(b.tags ?? {}) },
    subnetId,
    privateIp: `10.0.${n()}.${n()}`,
    macAddress: world.rng
      .hex(12)
      .toUpperCase()
      .replace(/(..)(?!$)/g, '$1-'),
    virtualMachineId: null,
    provisioningState: 'Updating',
    createdAt: world.iso(),
    operation: null,
  };
  world.nics.set(key(name), nic);
  nic.operation = world.startOperation('Microsoft.Network', () => {
    nic.provisioningState = 'Succeeded';
    return undefined;
  });
  return {
    status: 201,
    body: nicView(world, nic),
    headers: { 'Azure-AsyncOperation': world.operationUrl(nic.operation) },
  };
}

export function getNic(world: World, name: string): ArmReply {
  const nic = world.nics.get(key(name));
  if (nic === undefined) throw resourceNotFound(TYPE, name, world.resourceGroup);
  if (nic.operation !== null) world.tick(nic.operation);
  return { status: 200, body: nicView(world, nic) };
}

export function listNics(world: World): ArmReply {
  return { status: 200, body: { value: [...world.nics.values()].map((n) => nicView(world, n)) } };
}

export function deleteNic(world: World, name: string): ArmReply {
  const nic = world.nics.get(key(name));
  if (nic === undefined) return { status: 204 };
  if (nic.virtualMachineId !== null) {
    throw new ArmError(
      400,
      'NicInUse',
      `Network interface ${nic.id} is used by ${nic.virtualMachineId}; dissociate it before deleting it.`,
    );
  }
  if (nic.provisioningState !== 'Deleting') {
    nic.provisioningState = 'Deleting';
    nic.operation = world.startOperation('Microsoft.Network', () => {
      world.nics.delete(key(name));
      return undefined;
    });
  }
  const url = nic.operation === null ? '' : world.operationUrl(nic.operation);
  return { status: 202, headers: { 'Azure-AsyncOperation': url, Location: url } };
}
