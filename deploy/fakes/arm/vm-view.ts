/** A fake VM as ARM shows it (the wire format: `properties`, instance view on $expand). */
import type { FakeVm } from './model.ts';
import { resourceKey as key, type World } from './world.ts';

const TYPE = 'Microsoft.Compute/virtualMachines';

export function vmView(world: World, vm: FakeVm, expand: string | null = null): unknown {
  const properties: Record<string, unknown> = {
    vmId: vm.vmId,
    hardwareProfile: { vmSize: vm.size },
    storageProfile: {
      imageReference: vm.imageReference,
      osDisk: {
        name: vm.osDisk.name,
        createOption: 'FromImage',
        caching: 'ReadWrite',
        managedDisk: { id: vm.osDisk.id, storageAccountType: vm.osDisk.sku },
        deleteOption: vm.osDisk.deleteOption,
        diskSizeGB: vm.osDisk.sizeGb,
      },
      dataDisks: vm.dataDisks.map((d) => ({
        lun: d.lun,
        name: d.name,
        createOption: 'Attach',
        caching: 'None',
        managedDisk: { id: d.id },
        deleteOption: d.deleteOption,
        diskSizeGB: world.disks.get(key(d.name))?.sizeGb,
      })),
    },
    osProfile: vm.osProfile,
    networkProfile: {
      networkInterfaces: vm.nics.map((n) => ({
        id: n.id,
        properties: { primary: n.primary, deleteOption: n.deleteOption },
      })),
    },
    priority: vm.priority,
    provisioningState: vm.provisioningState,
    timeCreated: vm.createdAt,
  };
  if (vm.evictionPolicy !== null) properties.evictionPolicy = vm.evictionPolicy;
  if (vm.maxPrice !== null) properties.billingProfile = { maxPrice: vm.maxPrice };
  if (expand?.toLowerCase() === 'userdata' && vm.userData !== null)
    properties.userData = vm.userData;
  if (expand?.toLowerCase() === 'instanceview') {
    properties.instanceView = {
      computerName: vm.osProfile.computerName,
      statuses: [
        { code: `ProvisioningState/${vm.provisioningState.toLowerCase()}`, level: 'Info' },
        { code: `PowerState/${vm.powerState}`, level: 'Info' },
      ],
    };
  }
  return {
    id: vm.id,
    name: vm.name,
    type: TYPE,
    location: world.location,
    tags: vm.tags,
    ...(vm.zone === null ? {} : { zones: [vm.zone] }),
    properties,
  };
}
