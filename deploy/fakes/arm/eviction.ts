/**
 * Spot evictions: a Preempt scheduled event (what the VM's agent reads from IMDS), then the
 * eviction itself, which follows the VM's eviction policy. With `Delete` the VM goes and its
 * disks follow their own delete options (a data disk attached with `Detach` survives); with
 * `Deallocate` the VM stays, stopped, still holding its disks and its quota.
 */
import { ArmError, resourceNotFound } from './errors.ts';
import type { FakeVm, ScheduledEventsDocument } from './model.ts';
import { removeVm } from './compute.ts';
import { resourceKey as key, type World } from './world.ts';

function spotVm(world: World, vmName: string): FakeVm {
  const vm = world.vms.get(key(vmName));
  if (vm === undefined)
    throw resourceNotFound('Microsoft.Compute/virtualMachines', vmName, world.resourceGroup);
  if (vm.priority !== 'Spot') {
    throw new ArmError(
      409,
      'OperationNotAllowed',
      `VM '${vmName}' is not a Spot VM; only Spot VMs can be evicted.`,
    );
  }
  return vm;
}

export function scheduledEvents(world: World, vmName: string): ScheduledEventsDocument {
  const doc = world.scheduledEvents.get(key(vmName));
  return doc === undefined
    ? { DocumentIncarnation: 0, Events: [] }
    : {
        DocumentIncarnation: doc.DocumentIncarnation,
        Events: doc.Events.map((e) => ({ ...e, Resources: [...e.Resources] })),
      };
}

/** Announces the eviction (`Preempt`) and evicts when the notice runs out. Idempotent. */
export function preempt(world: World, vmName: string, noticeMs = world.evictionNoticeMs): string {
  const vm = spotVm(world, vmName);
  const doc = world.scheduledEvents.get(key(vmName)) ?? { DocumentIncarnation: 0, Events: [] };
  const existing = doc.Events.find((e) => e.EventType === 'Preempt');
  if (existing !== undefined) return existing.EventId;
  const eventId = world.rng.uuid().toUpperCase();
  const notBefore = new Date(world.now() + noticeMs).toUTCString();
  doc.DocumentIncarnation += 1;
  doc.Events.push({
    EventId: eventId,
    EventStatus: 'Scheduled',
    EventType: 'Preempt',
    ResourceType: 'VirtualMachine',
    Resources: [vm.name],
    NotBefore: notBefore,
    Description: 'The Spot virtual machine is being evicted.',
    EventSource: 'Platform',
    DurationInSeconds: -1,
  });
  world.scheduledEvents.set(key(vmName), doc);
  world.emit({ type: 'vm.preempt', vmName: vm.name, eventId, notBefore, at: world.iso() });
  const timer = setTimeout(() => {
    world.timers.delete(timer);
    if (world.vms.get(key(vmName)) === vm) evict(world, vmName);
  }, noticeMs);
  timer.unref();
  world.timers.add(timer);
  return eventId;
}

/** Evicts a Spot VM now (announcing it first if it was not). */
export function evict(world: World, vmName: string): void {
  const vm = spotVm(world, vmName);
  if (!world.scheduledEvents.get(key(vmName))?.Events.some((e) => e.EventType === 'Preempt')) {
    preempt(world, vmName, 0);
  }
  const policy = vm.evictionPolicy ?? 'Deallocate';
  const survivors = vm.dataDisks
    .filter((d) => policy === 'Deallocate' || d.deleteOption === 'Detach')
    .map((d) => d.name);
  if (policy === 'Delete') {
    // The capacity that evicted it is gone: its place is not given back.
    removeVm(world, vm, { releaseCapacity: false, emit: false });
  } else {
    vm.powerState = 'deallocated';
    for (const d of vm.dataDisks) {
      const disk = world.disks.get(key(d.name));
      if (disk !== undefined) disk.diskState = 'Reserved';
    }
    const doc = world.scheduledEvents.get(key(vmName));
    if (doc !== undefined) {
      doc.DocumentIncarnation += 1;
      doc.Events = [];
    }
  }
  world.emit({
    type: 'vm.evicted',
    vmName: vm.name,
    policy,
    dataDisks: survivors,
    at: world.iso(),
  });
}

/** An agent approving an event (POST StartRequests) lets it happen now, as on Azure. */
export function startEvents(world: World, eventIds: readonly string[]): number {
  let started = 0;
  for (const [vmKey, doc] of world.scheduledEvents) {
    const hit = doc.Events.find((e) => eventIds.includes(e.EventId));
    if (hit === undefined) continue;
    const vm = world.vms.get(vmKey);
    if (vm !== undefined) {
      evict(world, vm.name);
      started += 1;
    }
  }
  return started;
}
