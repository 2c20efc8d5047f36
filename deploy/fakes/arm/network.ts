/**
 * Microsoft.Network/networkInterfaces in the fake: create (LRO), get, list, delete. A NIC's
 * ipconfig may carry a public IP (`publicIPAddress.id`, a public-ip.ts resource): attached on
 * create or update, free again once the NIC is gone. The NIC may name a network security group
 * (`networkSecurityGroup.id`, security-group.ts), which must exist; a PUT without one takes it off.
 */
import { z } from 'zod';
import { ArmError, invalidReference, resourceNotFound } from './errors.ts';
import type { ArmReply, FakeNic, FakeNsg, FakePublicIp } from './model.ts';
import { resourceKey as key, type World } from './world.ts';
import { parseBody, validName } from './wire.ts';

const TYPE = 'Microsoft.Network/networkInterfaces';

const NicBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  properties: z.looseObject({
    networkSecurityGroup: z.looseObject({ id: z.string() }).optional(),
    ipConfigurations: z
      .array(
        z.looseObject({
          name: z.string(),
          properties: z.looseObject({
            subnet: z.looseObject({ id: z.string() }),
            privateIPAllocationMethod: z.string().optional(),
            publicIPAddress: z.looseObject({ id: z.string() }).optional(),
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
      ...(nic.networkSecurityGroupName === null
        ? {}
        : {
            networkSecurityGroup: {
              id: world.resourceId(
                'Microsoft.Network',
                'networkSecurityGroups',
                nic.networkSecurityGroupName,
              ),
            },
          }),
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
            ...(nic.publicIpName === null
              ? {}
              : {
                  publicIPAddress: {
                    id: world.resourceId(
                      'Microsoft.Network',
                      'publicIPAddresses',
                      nic.publicIpName,
                    ),
                  },
                }),
          },
        },
      ],
      ...(nic.virtualMachineId === null ? {} : { virtualMachine: { id: nic.virtualMachineId } }),
    },
  };
}

const ipConfigId = (nicId: string): string => `${nicId}/ipConfigurations/ipconfig1`;

/** The public IP a NIC's body names, checked: it exists and no other NIC holds it. */
function publicIpFor(world: World, ref: string | undefined, nicId: string): FakePublicIp | null {
  if (ref === undefined) return null;
  const m = /\/providers\/Microsoft\.Network\/publicIPAddresses\/([^/]+)$/i.exec(ref);
  const pip = m?.[1] === undefined ? undefined : world.publicIps.get(key(m[1]));
  if (pip === undefined || pip.provisioningState === 'Deleting') throw invalidReference(ref, nicId);
  const holder = pip.ipConfigurationId;
  if (holder !== null && holder.toLowerCase() !== ipConfigId(nicId).toLowerCase()) {
    throw new ArmError(
      400,
      'PublicIPAddressInUse',
      `Resource ${pip.id} is already in use by ${holder}.`,
    );
  }
  return pip;
}

/** The network security group a NIC's body names, checked: it exists (in this group). */
function nsgFor(world: World, ref: string | undefined, nicId: string): FakeNsg | null {
  if (ref === undefined) return null;
  const m = /^(.*)\/providers\/Microsoft\.Network\/networkSecurityGroups\/([^/]+)$/i.exec(ref);
  const nsg =
    m?.[2] === undefined || m[1]?.toLowerCase() !== world.rgId().toLowerCase()
      ? undefined
      : world.nsgs.get(key(m[2]));
  if (nsg === undefined || nsg.provisioningState === 'Deleting') throw invalidReference(ref, nicId);
  return nsg;
}

/** Points the NIC's ipconfig at `pip` (or none), freeing the one it had. */
function associate(world: World, nic: FakeNic, pip: FakePublicIp | null): void {
  if (nic.publicIpName !== null && nic.publicIpName.toLowerCase() !== pip?.name.toLowerCase()) {
    const old = world.publicIps.get(key(nic.publicIpName));
    if (old !== undefined) old.ipConfigurationId = null;
  }
  nic.publicIpName = pip?.name ?? null;
  if (pip !== null) pip.ipConfigurationId = ipConfigId(nic.id);
}

/** Removes the NIC (its delete finishing, or its VM going with deleteOption Delete). */
export function removeNic(world: World, nic: FakeNic): void {
  associate(world, nic, null);
  world.nics.delete(key(nic.name));
}

export function putNic(world: World, body: unknown, name: string): ArmReply {
  validName(name, 80);
  const b = parseBody(NicBody, body);
  const subnetId = b.properties.ipConfigurations[0]?.properties.subnet.id ?? '';
  const nicId = world.resourceId('Microsoft.Network', 'networkInterfaces', name);
  const publicIpRef = b.properties.ipConfigurations[0]?.properties.publicIPAddress?.id;
  const nsgRef = b.properties.networkSecurityGroup?.id;
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
    const nsg = nsgFor(world, nsgRef, existing.id);
    associate(world, existing, publicIpFor(world, publicIpRef, existing.id));
    existing.networkSecurityGroupName = nsg?.name ?? null;
    existing.tags = { ...(b.tags ?? {}) };
    return { status: 200, body: nicView(world, existing) };
  }
  const nsg = nsgFor(world, nsgRef, nicId);
  const pip = publicIpFor(world, publicIpRef, nicId);
  const n = (): number => 1 + Math.floor(world.rng.next() * 250);
  const nic: FakeNic = {
    name,
    id: nicId,
    tags: { ...(b.tags ?? {}) },
    subnetId,
    privateIp: `10.0.${n()}.${n()}`,
    macAddress: world.rng
      .hex(12)
      .toUpperCase()
      .replace(/(..)(?!$)/g, '$1-'),
    virtualMachineId: null,
    publicIpName: null,
    networkSecurityGroupName: nsg?.name ?? null,
    provisioningState: 'Updating',
    createdAt: world.iso(),
    operation: null,
  };
  world.nics.set(key(name), nic);
  associate(world, nic, pip);
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
      removeNic(world, nic);
      return undefined;
    });
  }
  const url = nic.operation === null ? '' : world.operationUrl(nic.operation);
  return { status: 202, headers: { 'Azure-AsyncOperation': url, Location: url } };
}
