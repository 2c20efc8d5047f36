/** Plain data to and from the SDK's models. Nothing of the SDK leaves this folder. */
import type { Disk, ImageReference, Snapshot, VirtualMachine } from '@azure/arm-compute';
import type {
  NetworkInterface,
  NetworkSecurityGroup,
  PublicIPAddress,
  SecurityRule,
} from '@azure/arm-network';
import { Tiers, type Tier } from '../../../contracts/index.ts';
import {
  PowerStates,
  type DiskInfo,
  type NicInfo,
  type PowerState,
  type InboundRule,
  type ResourceTags,
  type SecurityGroupInfo,
  type SharedResourceTags,
  type SnapshotInfo,
  type TagFilter,
  type VmInfo,
  type VmSpec,
} from './port.ts';

/** Marks a resource as Respawn's, so listings never touch anything else in the group. */
export const APP_TAG = { name: 'app', value: 'respawn' } as const;

export function tagsOf(tags: ResourceTags | SharedResourceTags): Record<string, string> {
  return {
    [APP_TAG.name]: APP_TAG.value,
    ...('player' in tags ? { player: tags.player } : {}),
    ...('session' in tags && tags.session !== undefined ? { session: tags.session } : {}),
    ...('tier' in tags && tags.tier !== undefined ? { tier: tags.tier } : {}),
    purpose: tags.purpose,
    ...(tags.region === undefined ? {} : { region: tags.region }),
  };
}

export function matchesFilter(
  tags: Record<string, string> | undefined,
  filter: TagFilter,
): boolean {
  if (tags?.[APP_TAG.name] !== APP_TAG.value) return false;
  return Object.entries(filter).every(([k, v]) => v === undefined || tags[k] === v);
}

export function lastSegment(id: string | undefined): string | null {
  if (id === undefined) return null;
  const parts = id.split('/').filter(Boolean);
  return parts[parts.length - 1] ?? null;
}

export function imageReference(image: string): ImageReference {
  if (image.startsWith('/')) return { id: image };
  const [publisher, offer, sku, version, ...rest] = image.split(':');
  if (
    publisher === undefined ||
    offer === undefined ||
    sku === undefined ||
    version === undefined ||
    rest.length > 0
  ) {
    throw new Error(`image '${image}' is neither a resource id nor publisher:offer:sku:version`);
  }
  return { publisher, offer, sku, version };
}

/** Windows computer names are at most 15 characters: keep a prefix and a hash of the rest. */
export function computerName(vmName: string): string {
  if (vmName.length <= 15) return vmName.replace(/[^A-Za-z0-9-]/g, '-');
  let h = 0x811c9dc5;
  for (let i = 0; i < vmName.length; i++) h = Math.imul(h ^ vmName.charCodeAt(i), 0x01000193);
  const prefix = vmName.slice(0, 6).replace(/[^A-Za-z0-9-]/g, '-');
  return `${prefix}-${(h >>> 0).toString(36).padStart(7, '0').slice(0, 8)}`;
}

export function vmParameters(
  spec: VmSpec,
  ctx: { location: string; nicId: string; dataDiskId: string },
): VirtualMachine {
  const spot = spec.tier === Tiers.spot;
  const linux = spec.admin.sshPublicKey !== undefined;
  return {
    location: ctx.location,
    tags: tagsOf(spec.tags),
    ...(spec.zone === undefined ? {} : { zones: [spec.zone] }),
    hardwareProfile: { vmSize: spec.size },
    storageProfile: {
      imageReference: imageReference(spec.image),
      osDisk: {
        createOption: 'FromImage',
        // The OS disk is disposable; the player's games and saves live on the data disk.
        deleteOption: 'Delete',
        managedDisk: { storageAccountType: 'Premium_LRS' },
        ...(spec.osDiskSizeGb === undefined ? {} : { diskSizeGB: spec.osDiskSizeGb }),
      },
      dataDisks: [
        {
          lun: 0,
          createOption: 'Attach',
          // Whatever happens to the VM (delete, Spot eviction), the player's disk stays.
          deleteOption: 'Detach',
          managedDisk: { id: ctx.dataDiskId },
        },
      ],
    },
    osProfile: {
      computerName: computerName(spec.name),
      adminUsername: spec.admin.username,
      ...(spec.admin.password === undefined ? {} : { adminPassword: spec.admin.password }),
      ...(linux
        ? {
            linuxConfiguration: {
              disablePasswordAuthentication: spec.admin.password === undefined,
              ssh: {
                publicKeys: [
                  {
                    path: `/home/${spec.admin.username}/.ssh/authorized_keys`,
                    keyData: spec.admin.sshPublicKey,
                  },
                ],
              },
            },
          }
        : {}),
    },
    networkProfile: {
      networkInterfaces: [{ id: ctx.nicId, primary: true, deleteOption: 'Delete' }],
    },
    ...(spot
      ? {
          priority: 'Spot',
          // Delete, not Deallocate: an evicted VM then holds neither Spot quota nor the
          // player's disk, which (deleteOption Detach) is free at once for the resumed VM.
          evictionPolicy: 'Delete',
          // -1: pay up to the On-Demand price, so we are evicted for capacity only, never price.
          billingProfile: { maxPrice: -1 },
        }
      : { priority: 'Regular' }),
    ...(spec.userData === undefined
      ? {}
      : { userData: Buffer.from(spec.userData, 'utf8').toString('base64') }),
  };
}

function tierOf(priority: string | undefined): Tier {
  return priority === 'Spot' || priority === 'Low' ? Tiers.spot : Tiers.onDemand;
}

function powerStateOf(vm: VirtualMachine): PowerState {
  const code = vm.instanceView?.statuses?.find((s) => s.code?.startsWith('PowerState/'))?.code;
  const state = code?.slice('PowerState/'.length);
  const known = Object.values(PowerStates) as string[];
  return state !== undefined && known.includes(state) ? (state as PowerState) : PowerStates.unknown;
}

const iso = (d: Date | undefined): string | null => (d === undefined ? null : d.toISOString());

export function toVmInfo(vm: VirtualMachine): VmInfo {
  const policy = vm.evictionPolicy;
  return {
    name: vm.name ?? '',
    id: vm.id ?? '',
    vmId: vm.vmId ?? null,
    size: vm.hardwareProfile?.vmSize ?? '',
    tier: tierOf(vm.priority),
    zone: vm.zones?.[0] ?? null,
    evictionPolicy: policy === 'Deallocate' || policy === 'Delete' ? policy : null,
    provisioningState: vm.provisioningState ?? 'Unknown',
    powerState: powerStateOf(vm),
    nicNames: (vm.networkProfile?.networkInterfaces ?? []).flatMap((n) => lastSegment(n.id) ?? []),
    dataDiskNames: (vm.storageProfile?.dataDisks ?? []).flatMap(
      (d) => d.name ?? lastSegment(d.managedDisk?.id) ?? [],
    ),
    tags: { ...vm.tags },
    createdAt: iso(vm.timeCreated),
  };
}

export function toDiskInfo(disk: Disk): DiskInfo {
  return {
    name: disk.name ?? '',
    id: disk.id ?? '',
    sizeGb: disk.diskSizeGB ?? 0,
    sku: disk.sku?.name ?? null,
    zone: disk.zones?.[0] ?? null,
    diskState: disk.diskState ?? null,
    attachedToVm: lastSegment(disk.managedBy),
    provisioningState: disk.provisioningState ?? 'Unknown',
    tags: { ...disk.tags },
    createdAt: iso(disk.timeCreated),
  };
}

export function toSnapshotInfo(snapshot: Snapshot): SnapshotInfo {
  return {
    name: snapshot.name ?? '',
    id: snapshot.id ?? '',
    sizeGb: snapshot.diskSizeGB ?? 0,
    sourceDiskId: snapshot.creationData?.sourceResourceId ?? null,
    incremental: snapshot.incremental ?? false,
    provisioningState: snapshot.provisioningState ?? 'Unknown',
    tags: { ...snapshot.tags },
    createdAt: iso(snapshot.timeCreated),
  };
}

/** `publicIp` is the public IP resource the NIC's ipconfig names (the NIC shows only its id). */
export function toNicInfo(nic: NetworkInterface, publicIp?: PublicIPAddress): NicInfo {
  return {
    name: nic.name ?? '',
    id: nic.id ?? '',
    privateIp: nic.ipConfigurations?.[0]?.privateIPAddress ?? null,
    publicIpName: lastSegment(nic.ipConfigurations?.[0]?.publicIPAddress?.id),
    publicIp: publicIp?.ipAddress ?? null,
    securityGroupName: lastSegment(nic.networkSecurityGroup?.id),
    attachedToVm: lastSegment(nic.virtualMachine?.id),
    provisioningState: nic.provisioningState ?? 'Unknown',
    tags: { ...nic.tags },
  };
}

/** An inbound allow rule as ARM takes it: from `source` (the Internet) to any address here. */
export function securityRule(rule: InboundRule): SecurityRule {
  return {
    name: rule.name,
    ...(rule.description === undefined ? {} : { description: rule.description }),
    protocol: rule.protocol,
    access: 'Allow',
    direction: 'Inbound',
    priority: rule.priority,
    sourceAddressPrefix: rule.source ?? 'Internet',
    sourcePortRange: '*',
    destinationAddressPrefix: '*',
    destinationPortRanges: [...rule.ports],
  };
}

export function toSecurityGroupInfo(nsg: NetworkSecurityGroup): SecurityGroupInfo {
  return {
    name: nsg.name ?? '',
    id: nsg.id ?? '',
    ruleNames: (nsg.securityRules ?? []).flatMap((r) => r.name ?? []),
    provisioningState: nsg.provisioningState ?? 'Unknown',
    tags: { ...nsg.tags },
  };
}
