/** Microsoft.Compute/virtualMachines in the fake: create (LRO), get, list, delete, eviction. */
import { z } from 'zod';
import { ArmError, referenceNotFound, resourceNotFound } from './errors.ts';
import type { ArmReply, ArmRequest, DeleteOption, FakeVm, VmDiskRef, VmNicRef } from './model.ts';
import { resourceKey as key, type World } from './world.ts';
import { lastSegment, parseBody, validName } from './wire.ts';
import { removeNic } from './network.ts';
import { vmView } from './vm-view.ts';

const TYPE = 'Microsoft.Compute/virtualMachines';

const deleteOption = z.enum(['Delete', 'Detach']);

const VmBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  zones: z.array(z.string()).max(1).optional(),
  properties: z.looseObject({
    hardwareProfile: z.looseObject({ vmSize: z.string() }),
    storageProfile: z.looseObject({
      imageReference: z.record(z.string(), z.unknown()).optional(),
      osDisk: z
        .looseObject({
          createOption: z.string(),
          deleteOption: deleteOption.optional(),
          diskSizeGB: z.number().int().positive().optional(),
          managedDisk: z.looseObject({ storageAccountType: z.string().optional() }).optional(),
        })
        .optional(),
      dataDisks: z
        .array(
          z.looseObject({
            lun: z.number().int().min(0),
            createOption: z.string(),
            deleteOption: deleteOption.optional(),
            managedDisk: z.looseObject({ id: z.string() }).optional(),
          }),
        )
        .optional(),
    }),
    osProfile: z.looseObject({ adminUsername: z.string().min(1) }).optional(),
    networkProfile: z.looseObject({
      networkInterfaces: z
        .array(
          z.looseObject({
            id: z.string(),
            properties: z
              .looseObject({
                primary: z.boolean().optional(),
                deleteOption: deleteOption.optional(),
              })
              .optional(),
          }),
        )
        .min(1),
    }),
    priority: z.enum(['Regular', 'Low', 'Spot']).optional(),
    evictionPolicy: z.enum(['Deallocate', 'Delete']).optional(),
    billingProfile: z.looseObject({ maxPrice: z.number().optional() }).optional(),
    userData: z.string().optional(),
  }),
});
type VmBody = z.infer<typeof VmBody>;

function asyncHeaders(world: World, vm: FakeVm): Record<string, string> {
  return vm.operation === null ? {} : { 'Azure-AsyncOperation': world.operationUrl(vm.operation) };
}

export function putVm(world: World, req: ArmRequest, name: string): ArmReply {
  validName(name, 64);
  const body = parseBody(VmBody, req.body);
  if (body.location.toLowerCase() !== world.location.toLowerCase()) {
    throw new ArmError(
      400,
      'LocationNotAvailableForResourceType',
      `This fake serves location '${world.location}' only.`,
    );
  }
  const p = body.properties;
  const priority = p.priority === 'Spot' || p.priority === 'Low' ? 'Spot' : 'Regular';
  if (priority === 'Regular' && p.evictionPolicy !== undefined) {
    throw new ArmError(
      400,
      'InvalidParameter',
      'evictionPolicy can be set only on Spot virtual machines.',
    );
  }
  const zone = body.zones?.[0] ?? null;
  const existing = world.vms.get(key(name));
  if (existing !== undefined) {
    if (existing.provisioningState === 'Deleting') {
      throw new ArmError(
        409,
        'OperationNotAllowed',
        `Operation 'PUT' is not allowed on VM '${name}' since it is marked for deletion.`,
      );
    }
    if (existing.priority !== priority) {
      throw new ArmError(
        409,
        'PropertyChangeNotAllowed',
        "Changing property 'priority' is not allowed.",
      );
    }
    if (existing.zone !== zone) {
      throw new ArmError(
        409,
        'PropertyChangeNotAllowed',
        "Changing property 'zones' is not allowed.",
      );
    }
    if (existing.provisioningState === 'Creating') {
      // The same create again while the first runs: both callers follow the same operation.
      return { status: 201, body: vmView(world, existing), headers: asyncHeaders(world, existing) };
    }
    if (existing.provisioningState === 'Succeeded') {
      existing.tags = { ...(body.tags ?? {}) };
      return { status: 200, body: vmView(world, existing) };
    }
    // Failed: Azure tries the allocation again, in place of the failed one.
    world.vms.delete(key(name));
    try {
      const reply = createVm(world, req, name, body, priority, zone);
      world.disks.delete(key(existing.osDisk.name));
      world.release(existing.capacityRule);
      return reply;
    } catch (err) {
      world.vms.set(key(name), existing);
      throw err;
    }
  }
  return createVm(world, req, name, body, priority, zone);
}

function createVm(
  world: World,
  req: ArmRequest,
  name: string,
  body: VmBody,
  priority: 'Spot' | 'Regular',
  zone: string | null,
): ArmReply {
  const p = body.properties;
  const size = p.hardwareProfile.vmSize;
  const info = world.sizeInfo(size);
  const id = world.resourceId('Microsoft.Compute', 'virtualMachines', name);
  if (p.osProfile === undefined) {
    throw new ArmError(
      400,
      'InvalidParameter',
      "Required parameter 'osProfile' is missing (null).",
    );
  }
  const nics: VmNicRef[] = p.networkProfile.networkInterfaces.map((ref, i) => {
    const nic = world.nics.get(key(lastSegment(ref.id)));
    if (nic === undefined) throw referenceNotFound(ref.id, id);
    if (nic.virtualMachineId !== null && nic.virtualMachineId.toLowerCase() !== id.toLowerCase()) {
      throw new ArmError(
        400,
        'NicInUse',
        `Network interface '${nic.name}' is used by ${nic.virtualMachineId}.`,
      );
    }
    return {
      id: nic.id,
      name: nic.name,
      primary: ref.properties?.primary ?? i === 0,
      deleteOption: ref.properties?.deleteOption ?? 'Detach',
    };
  });
  const dataDisks: VmDiskRef[] = (p.storageProfile.dataDisks ?? []).map((d) => {
    if (d.createOption.toLowerCase() !== 'attach' || d.managedDisk === undefined) {
      throw new ArmError(
        400,
        'InvalidParameter',
        'The fake attaches existing managed disks only (createOption Attach).',
      );
    }
    const disk = world.disks.get(key(lastSegment(d.managedDisk.id)));
    if (disk === undefined) throw referenceNotFound(d.managedDisk.id, id);
    if (disk.managedBy !== null && disk.managedBy.toLowerCase() !== id.toLowerCase()) {
      throw new ArmError(
        409,
        'OperationNotAllowed',
        `Disk '${disk.name}' is already attached to ${disk.managedBy}.`,
      );
    }
    if (disk.zone !== null && disk.zone !== zone) {
      throw new ArmError(
        400,
        'BadRequest',
        `Disk '${disk.name}' is in zone ${disk.zone}; it cannot be attached to a VM in zone ${zone ?? 'none'}.`,
      );
    }
    return { lun: d.lun, name: disk.name, id: disk.id, deleteOption: d.deleteOption ?? 'Detach' };
  });
  world.checkQuota(size, priority);
  const placed = world.place(size, priority, zone);
  if (placed.failure !== null && placed.sync) {
    throw new ArmError(409, placed.failure.code, placed.failure.message);
  }
  const osName = `${name}_OsDisk_1_${world.rng.hex(32)}`;
  const osSku = p.storageProfile.osDisk?.managedDisk?.storageAccountType ?? 'Premium_LRS';
  const { adminPassword: _secret, ...osProfile } = p.osProfile;
  const vm: FakeVm = {
    name,
    id,
    vmId: world.rng.uuid(),
    tags: { ...(body.tags ?? {}) },
    zone,
    size,
    vcpus: info.vcpus,
    family: info.family,
    priority,
    evictionPolicy: priority === 'Spot' ? (p.evictionPolicy ?? 'Deallocate') : null,
    maxPrice: p.billingProfile?.maxPrice ?? null,
    provisioningState: 'Creating',
    powerState: 'starting',
    nics,
    osDisk: {
      name: osName,
      id: world.resourceId('Microsoft.Compute', 'disks', osName),
      deleteOption: p.storageProfile.osDisk?.deleteOption ?? 'Detach',
      sizeGb: p.storageProfile.osDisk?.diskSizeGB ?? 127,
      sku: osSku,
    },
    dataDisks,
    imageReference: p.storageProfile.imageReference ?? {},
    osProfile: { computerName: name.slice(0, 15), ...osProfile },
    userData: p.userData ?? null,
    createdAt: world.iso(),
    operation: null,
    capacityRule: placed.rule,
    pendingFailure: req.asyncFault ?? placed.failure,
  };
  for (const n of nics) {
    const nic = world.nics.get(key(n.name));
    if (nic !== undefined) nic.virtualMachineId = id;
  }
  for (const d of dataDisks) {
    const disk = world.disks.get(key(d.name));
    if (disk !== undefined) {
      disk.managedBy = id;
      disk.diskState = 'Attached';
    }
  }
  world.disks.set(key(osName), {
    name: osName,
    id: vm.osDisk.id,
    uniqueId: world.rng.uuid(),
    tags: {},
    zone,
    sizeGb: vm.osDisk.sizeGb,
    sku: osSku,
    managedBy: id,
    diskState: 'Attached',
    provisioningState: 'Succeeded',
    creationData: { createOption: 'FromImage', imageReference: vm.imageReference },
    createdAt: vm.createdAt,
    operation: null,
  });
  world.vms.set(key(name), vm);
  vm.operation = world.startOperation('Microsoft.Compute', () => {
    if (world.vms.get(key(name)) !== vm)
      return { code: 'OperationPreempted', message: 'The VM was removed.' };
    if (vm.pendingFailure !== null) {
      vm.provisioningState = 'Failed';
      vm.powerState = 'deallocated';
      world.emit({
        type: 'vm.failed',
        vmName: name,
        code: vm.pendingFailure.code,
        at: world.iso(),
      });
      return vm.pendingFailure;
    }
    vm.provisioningState = 'Succeeded';
    vm.powerState = 'running';
    world.emit({ type: 'vm.running', vmName: name, tags: { ...vm.tags }, at: world.iso() });
    return undefined;
  });
  return { status: 201, body: vmView(world, vm), headers: asyncHeaders(world, vm) };
}

export function getVm(world: World, req: ArmRequest, name: string): ArmReply {
  const vm = world.vms.get(key(name));
  if (vm === undefined) throw resourceNotFound(TYPE, name, world.resourceGroup);
  if (vm.operation !== null) world.tick(vm.operation);
  return { status: 200, body: vmView(world, vm, req.query.get('$expand')) };
}

export function listVms(world: World): ArmReply {
  return { status: 200, body: { value: [...world.vms.values()].map((vm) => vmView(world, vm)) } };
}

export function deleteVm(world: World, name: string): ArmReply {
  const vm = world.vms.get(key(name));
  if (vm === undefined) return { status: 204 };
  if (vm.provisioningState !== 'Deleting') {
    if (vm.operation !== null && vm.operation.status === 'InProgress') {
      const creating = vm.operation;
      creating.status = 'Failed';
      creating.error = {
        code: 'OperationPreempted',
        message: 'Operation execution has been preempted by a more recent operation.',
      };
      creating.endedAt = world.now();
    }
    vm.provisioningState = 'Deleting';
    vm.operation = world.startOperation('Microsoft.Compute', () => {
      removeVm(world, vm, { releaseCapacity: true, emit: true });
      return undefined;
    });
  }
  const url = vm.operation === null ? '' : world.operationUrl(vm.operation);
  return { status: 202, headers: { 'Azure-AsyncOperation': url, Location: url } };
}

/** Takes a VM away; its NICs and disks follow their delete options. */
export function removeVm(
  world: World,
  vm: FakeVm,
  opts: { releaseCapacity: boolean; emit: boolean },
): void {
  const follow = (name: string, option: DeleteOption): void => {
    const disk = world.disks.get(key(name));
    if (disk === undefined) return;
    if (option === 'Delete') world.disks.delete(key(name));
    else {
      disk.managedBy = null;
      disk.diskState = 'Unattached';
    }
  };
  for (const n of vm.nics) {
    const nic = world.nics.get(key(n.name));
    if (nic === undefined) continue;
    if (n.deleteOption === 'Delete') removeNic(world, nic);
    else nic.virtualMachineId = null;
  }
  follow(vm.osDisk.name, vm.osDisk.deleteOption);
  for (const d of vm.dataDisks) follow(d.name, d.deleteOption);
  world.vms.delete(key(vm.name));
  world.scheduledEvents.delete(key(vm.name));
  if (opts.releaseCapacity) world.release(vm.capacityRule);
  if (opts.emit) world.emit({ type: 'vm.deleted', vmName: vm.name, at: world.iso() });
}
