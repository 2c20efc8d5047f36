/** Microsoft.Compute/disks and snapshots in the fake: create (LRO), get, list, delete. */
import { z } from 'zod';
import { ArmError, referenceNotFound, resourceNotFound } from './errors.ts';
import type { ArmReply, FakeDisk, FakeSnapshot, Operation } from './model.ts';
import { resourceKey as key, type World } from './world.ts';
import { lastSegment, parseBody, validName } from './wire.ts';

const DISK_TYPE = 'Microsoft.Compute/disks';
const SNAPSHOT_TYPE = 'Microsoft.Compute/snapshots';
/** What a disk made from an image holds at least (the fake's images are all this size). */
const IMAGE_SIZE_GB = 128;

const CreationData = z.looseObject({
  createOption: z.string(),
  imageReference: z.looseObject({ id: z.string() }).optional(),
  galleryImageReference: z
    .looseObject({ id: z.string(), lun: z.number().int().optional() })
    .optional(),
  sourceResourceId: z.string().optional(),
});

const DiskBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  zones: z.array(z.string()).max(1).optional(),
  sku: z.looseObject({ name: z.string() }).optional(),
  properties: z.looseObject({
    creationData: CreationData,
    diskSizeGB: z.number().int().positive().optional(),
  }),
});

const SnapshotBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  sku: z.looseObject({ name: z.string() }).optional(),
  properties: z.looseObject({
    creationData: CreationData,
    incremental: z.boolean().optional(),
  }),
});

function accepted(world: World, op: Operation | null): ArmReply {
  const url = op === null ? '' : world.operationUrl(op);
  return { status: 202, headers: { 'Azure-AsyncOperation': url, Location: url } };
}

export function diskView(world: World, d: FakeDisk): unknown {
  return {
    id: d.id,
    name: d.name,
    type: DISK_TYPE,
    location: world.location,
    tags: d.tags,
    ...(d.zone === null ? {} : { zones: [d.zone] }),
    ...(d.managedBy === null ? {} : { managedBy: d.managedBy }),
    sku: { name: d.sku, tier: d.sku.startsWith('Premium') ? 'Premium' : 'Standard' },
    properties: {
      creationData: d.creationData,
      diskSizeGB: d.sizeGb,
      diskSizeBytes: d.sizeGb * 1024 ** 3,
      uniqueId: d.uniqueId,
      diskState: d.diskState,
      provisioningState: d.provisioningState,
      timeCreated: d.createdAt,
    },
  };
}

export function snapshotView(world: World, s: FakeSnapshot): unknown {
  return {
    id: s.id,
    name: s.name,
    type: SNAPSHOT_TYPE,
    location: world.location,
    tags: s.tags,
    sku: { name: 'Standard_LRS', tier: 'Standard' },
    properties: {
      creationData: {
        createOption: 'Copy',
        sourceResourceId: s.sourceResourceId,
        sourceUniqueId: s.sourceUniqueId,
      },
      diskSizeGB: s.sizeGb,
      incremental: s.incremental,
      uniqueId: s.uniqueId,
      provisioningState: s.provisioningState,
      timeCreated: s.createdAt,
    },
  };
}

function sourceOf(
  world: World,
  id: string,
  by: string,
): { sizeGb: number; uniqueId: string; id: string } {
  const name = key(lastSegment(id));
  const found = id.toLowerCase().includes('/snapshots/')
    ? world.snapshots.get(name)
    : world.disks.get(name);
  if (found === undefined) throw referenceNotFound(id, by);
  return found;
}

export function putDisk(world: World, body: unknown, name: string): ArmReply {
  validName(name, 80);
  const b = parseBody(DiskBody, body);
  const existing = world.disks.get(key(name));
  if (existing !== undefined) {
    if (existing.provisioningState === 'Deleting') {
      throw new ArmError(409, 'OperationNotAllowed', `Disk '${name}' is being deleted.`);
    }
    existing.tags = { ...(b.tags ?? {}) };
    return { status: 200, body: diskView(world, existing) };
  }
  const id = world.resourceId('Microsoft.Compute', 'disks', name);
  const cd = b.properties.creationData;
  const requested = b.properties.diskSizeGB;
  let sizeGb: number;
  switch (cd.createOption.toLowerCase()) {
    case 'empty':
      if (requested === undefined) {
        throw new ArmError(
          400,
          'InvalidParameter',
          "Required parameter 'diskSizeGB' is missing for an empty disk.",
        );
      }
      sizeGb = requested;
      break;
    case 'fromimage':
      if (cd.imageReference === undefined && cd.galleryImageReference === undefined) {
        throw new ArmError(
          400,
          'InvalidParameter',
          'An image reference is required with createOption FromImage.',
        );
      }
      sizeGb = Math.max(requested ?? 0, IMAGE_SIZE_GB);
      break;
    case 'copy': {
      if (cd.sourceResourceId === undefined) {
        throw new ArmError(
          400,
          'InvalidParameter',
          'sourceResourceId is required with createOption Copy.',
        );
      }
      const source = sourceOf(world, cd.sourceResourceId, id);
      if (requested !== undefined && requested < source.sizeGb) {
        throw new ArmError(
          400,
          'InvalidParameter',
          `A disk cannot be smaller than its source (${source.sizeGb} GB).`,
        );
      }
      sizeGb = requested ?? source.sizeGb;
      break;
    }
    default:
      throw new ArmError(
        400,
        'InvalidParameter',
        `createOption '${cd.createOption}' is not supported by the fake.`,
      );
  }
  const disk: FakeDisk = {
    name,
    id,
    uniqueId: world.rng.uuid(),
    tags: { ...(b.tags ?? {}) },
    zone: b.zones?.[0] ?? null,
    sizeGb,
    sku: b.sku?.name ?? 'Premium_LRS',
    managedBy: null,
    diskState: 'Unattached',
    provisioningState: 'Creating',
    creationData: cd,
    createdAt: world.iso(),
    operation: null,
  };
  world.disks.set(key(name), disk);
  disk.operation = world.startOperation('Microsoft.Compute', () => {
    disk.provisioningState = 'Succeeded';
    return undefined;
  });
  return accepted(world, disk.operation);
}

export function getDisk(world: World, name: string): ArmReply {
  const disk = world.disks.get(key(name));
  if (disk === undefined) throw resourceNotFound(DISK_TYPE, name, world.resourceGroup);
  if (disk.operation !== null) world.tick(disk.operation);
  return { status: 200, body: diskView(world, disk) };
}

export function listDisks(world: World): ArmReply {
  return { status: 200, body: { value: [...world.disks.values()].map((d) => diskView(world, d)) } };
}

export function deleteDisk(world: World, name: string): ArmReply {
  const disk = world.disks.get(key(name));
  if (disk === undefined) return { status: 204 };
  if (disk.managedBy !== null) {
    throw new ArmError(
      409,
      'OperationNotAllowed',
      `Disk '${disk.name}' is attached to VM ${disk.managedBy}.`,
    );
  }
  if (disk.provisioningState !== 'Deleting') {
    disk.provisioningState = 'Deleting';
    disk.operation = world.startOperation('Microsoft.Compute', () => {
      world.disks.delete(key(name));
      return undefined;
    });
  }
  return accepted(world, disk.operation);
}

export function putSnapshot(world: World, body: unknown, name: string): ArmReply {
  validName(name, 80);
  const b = parseBody(SnapshotBody, body);
  const existing = world.snapshots.get(key(name));
  if (existing !== undefined) {
    if (existing.provisioningState === 'Deleting') {
      throw new ArmError(409, 'OperationNotAllowed', `Snapshot '${name}' is being deleted.`);
    }
    existing.tags = { ...(b.tags ?? {}) };
    return { status: 200, body: snapshotView(world, existing) };
  }
  const id = world.resourceId('Microsoft.Compute', 'snapshots', name);
  const cd = b.properties.creationData;
  if (cd.createOption.toLowerCase() !== 'copy' || cd.sourceResourceId === undefined) {
    throw new ArmError(
      400,
      'InvalidParameter',
      'The fake makes snapshots with createOption Copy from a disk.',
    );
  }
  const source = sourceOf(world, cd.sourceResourceId, id);
  const snapshot: FakeSnapshot = {
    name,
    id,
    uniqueId: world.rng.uuid(),
    tags: { ...(b.tags ?? {}) },
    sizeGb: source.sizeGb,
    sourceResourceId: source.id,
    sourceUniqueId: source.uniqueId,
    incremental: b.properties.incremental ?? false,
    provisioningState: 'Creating',
    createdAt: world.iso(),
    operation: null,
  };
  world.snapshots.set(key(name), snapshot);
  snapshot.operation = world.startOperation('Microsoft.Compute', () => {
    snapshot.provisioningState = 'Succeeded';
    return undefined;
  });
  return accepted(world, snapshot.operation);
}

export function getSnapshot(world: World, name: string): ArmReply {
  const snapshot = world.snapshots.get(key(name));
  if (snapshot === undefined) throw resourceNotFound(SNAPSHOT_TYPE, name, world.resourceGroup);
  if (snapshot.operation !== null) world.tick(snapshot.operation);
  return { status: 200, body: snapshotView(world, snapshot) };
}

export function listSnapshots(world: World): ArmReply {
  return {
    status: 200,
    body: { value: [...world.snapshots.values()].map((s) => snapshotView(world, s)) },
  };
}

export function deleteSnapshot(world: World, name: string): ArmReply {
  const snapshot = world.snapshots.get(key(name));
  if (snapshot === undefined) return { status: 204 };
  if (snapshot.provisioningState !== 'Deleting') {
    snapshot.provisioningState = 'Deleting';
    snapshot.operation = world.startOperation('Microsoft.Compute', () => {
      world.snapshots.delete(key(name));
      return undefined;
    });
  }
  return accepted(world, snapshot.operation);
}
