/** Disk and snapshot operations of the Azure VmProvider: the player's persistent disk. */
import type { ComputeManagementClient, Disk, Snapshot } from '@azure/arm-compute';
import type { Caller } from './call.ts';
import { matchesFilter, tagsOf, toDiskInfo, toSnapshotInfo } from './mapping.ts';
import type { DiskInfo, SnapshotInfo, VmProvider } from './port.ts';

export type DiskOperations = Pick<
  VmProvider,
  | 'createDisk'
  | 'createDiskFromSnapshot'
  | 'snapshotDisk'
  | 'deleteDisk'
  | 'getDisk'
  | 'listDisks'
  | 'getSnapshot'
  | 'listSnapshots'
  | 'deleteSnapshot'
>;

export function createDiskOperations(deps: {
  compute: ComputeManagementClient;
  caller: Caller;
  resourceGroup: string;
  location: string;
  computeId: (type: string, name: string) => string;
  lro: (signal: AbortSignal) => { updateIntervalInMs: number; abortSignal: AbortSignal };
  operationTimeoutMs: number;
  requestTimeoutMs: number;
}): DiskOperations {
  const { compute, resourceGroup: rg, location, computeId, lro } = deps;
  const { run, orNull, checkName } = deps.caller;
  const { operationTimeoutMs, requestTimeoutMs } = deps;

  async function putDisk(name: string, disk: Disk, signal: AbortSignal): Promise<DiskInfo> {
    const poller = compute.disks.createOrUpdate(rg, name, disk, lro(signal));
    return toDiskInfo(await poller.pollUntilDone({ abortSignal: signal }));
  }

  return {
    createDisk(spec) {
      return run(
        'createDisk',
        { disk: spec.name, source: spec.source.kind },
        operationTimeoutMs,
        (signal) => {
          checkName('createDisk', spec.name, 80);
          const source = spec.source;
          const creationData: Disk['creationData'] =
            source.kind === 'empty'
              ? { createOption: 'Empty' }
              : source.imageId.toLowerCase().includes('/galleries/')
                ? {
                    createOption: 'FromImage',
                    galleryImageReference: {
                      id: source.imageId,
                      ...(source.lun === undefined ? {} : { lun: source.lun }),
                    },
                  }
                : {
                    createOption: 'FromImage',
                    imageReference: {
                      id: source.imageId,
                      ...(source.lun === undefined ? {} : { lun: source.lun }),
                    },
                  };
          return putDisk(
            spec.name,
            {
              location,
              tags: tagsOf(spec.tags),
              ...(spec.zone === undefined ? {} : { zones: [spec.zone] }),
              sku: { name: spec.sku ?? 'Premium_LRS' },
              creationData,
              diskSizeGB: spec.sizeGb,
            },
            signal,
          );
        },
      );
    },

    createDiskFromSnapshot(spec) {
      const fields = { disk: spec.name, snapshot: spec.snapshotName };
      return run('createDiskFromSnapshot', fields, operationTimeoutMs, (signal) => {
        checkName('createDiskFromSnapshot', spec.name, 80);
        checkName('createDiskFromSnapshot', spec.snapshotName, 80);
        return putDisk(
          spec.name,
          {
            location,
            tags: tagsOf(spec.tags),
            ...(spec.zone === undefined ? {} : { zones: [spec.zone] }),
            sku: { name: spec.sku ?? 'Premium_LRS' },
            creationData: {
              createOption: 'Copy',
              sourceResourceId: computeId('snapshots', spec.snapshotName),
            },
            ...(spec.sizeGb === undefined ? {} : { diskSizeGB: spec.sizeGb }),
          },
          signal,
        );
      });
    },

    snapshotDisk(spec) {
      const fields = { snapshot: spec.name, disk: spec.diskName };
      return run(
        'snapshotDisk',
        fields,
        operationTimeoutMs,
        async (signal): Promise<SnapshotInfo> => {
          checkName('snapshotDisk', spec.name, 80);
          checkName('snapshotDisk', spec.diskName, 80);
          const snapshot: Snapshot = {
            location,
            tags: tagsOf(spec.tags),
            incremental: spec.incremental ?? true,
            creationData: {
              createOption: 'Copy',
              sourceResourceId: computeId('disks', spec.diskName),
            },
          };
          const poller = compute.snapshots.createOrUpdate(rg, spec.name, snapshot, lro(signal));
          return toSnapshotInfo(await poller.pollUntilDone({ abortSignal: signal }));
        },
      );
    },

    deleteDisk(name) {
      return run('deleteDisk', { disk: name }, operationTimeoutMs, async (signal) => {
        checkName('deleteDisk', name, 80);
        await compute.disks.delete(rg, name, lro(signal)).pollUntilDone({ abortSignal: signal });
      });
    },

    getDisk(name) {
      return run('getDisk', { disk: name }, requestTimeoutMs, async (signal) => {
        checkName('getDisk', name, 80);
        const disk = await orNull(compute.disks.get(rg, name, { abortSignal: signal }), 'getDisk');
        return disk === null ? null : toDiskInfo(disk);
      });
    },

    listDisks(filter = {}) {
      return run('listDisks', {}, requestTimeoutMs, async (signal) => {
        const out = [];
        for await (const disk of compute.disks.listByResourceGroup(rg, { abortSignal: signal })) {
          if (matchesFilter(disk.tags, filter)) out.push(toDiskInfo(disk));
        }
        return out;
      });
    },

    getSnapshot(name) {
      return run('getSnapshot', { snapshot: name }, requestTimeoutMs, async (signal) => {
        checkName('getSnapshot', name, 80);
        const s = await orNull(
          compute.snapshots.get(rg, name, { abortSignal: signal }),
          'getSnapshot',
        );
        return s === null ? null : toSnapshotInfo(s);
      });
    },

    listSnapshots(filter = {}) {
      return run('listSnapshots', {}, requestTimeoutMs, async (signal) => {
        const out = [];
        for await (const s of compute.snapshots.listByResourceGroup(rg, { abortSignal: signal })) {
          if (matchesFilter(s.tags, filter)) out.push(toSnapshotInfo(s));
        }
        return out;
      });
    },

    deleteSnapshot(name) {
      return run('deleteSnapshot', { snapshot: name }, operationTimeoutMs, async (signal) => {
        checkName('deleteSnapshot', name, 80);
        await compute.snapshots
          .delete(rg, name, lro(signal))
          .pollUntilDone({ abortSignal: signal });
      });
    },
  };
}
