/** What the fake ARM keeps in memory, and the options it starts with. */
import type { ArmErrorBody, CapacityCode } from './errors.ts';

export type DeleteOption = 'Delete' | 'Detach';
export type Priority = 'Spot' | 'Regular';

export interface VmSizeInfo {
  vcpus: number;
  /** The usage (quota) name of the size's family, e.g. `standardNCASv3_T4Family`. */
  family: string;
}

/** Sizes the fake knows; more can be passed in `sizes`. */
export const DEFAULT_SIZES: Readonly<Record<string, VmSizeInfo>> = {
  Standard_NC4as_T4_v3: { vcpus: 4, family: 'standardNCASv3_T4Family' },
  Standard_NC8as_T4_v3: { vcpus: 8, family: 'standardNCASv3_T4Family' },
  Standard_NC16as_T4_v3: { vcpus: 16, family: 'standardNCASv3_T4Family' },
  Standard_NC64as_T4_v3: { vcpus: 64, family: 'standardNCASv3_T4Family' },
  Standard_NV6ads_A10_v5: { vcpus: 6, family: 'StandardNVADSA10v5Family' },
  Standard_NV12ads_A10_v5: { vcpus: 12, family: 'StandardNVADSA10v5Family' },
  Standard_D2s_v3: { vcpus: 2, family: 'standardDSv3Family' },
  Standard_D4s_v3: { vcpus: 4, family: 'standardDSv3Family' },
};

/** Usage names that are not a family. Spot VMs count only against `lowPriorityCores`. */
export const REGIONAL_CORES = 'cores';
export const SPOT_CORES = 'lowPriorityCores';

export const DEFAULT_QUOTAS: Readonly<Record<string, number>> = {
  [REGIONAL_CORES]: 200,
  [SPOT_CORES]: 100,
  standardNCASv3_T4Family: 48,
};

/**
 * Where VMs fit. A create matching a rule (every given field equal) uses one of its
 * `available` places; with none left it fails with `code`. Without a matching rule capacity is
 * unlimited. A deleted VM gives its place back; an evicted one does not (that capacity is gone).
 */
export interface CapacityRule {
  size?: string;
  priority?: Priority;
  zone?: string;
  /** Places left; default 0 (no capacity at all). */
  available?: number;
  /** Default: ZonalAllocationFailed for a zonal rule, else AllocationFailed. SkuNotAvailable is
   * refused at once (409); the others fail the long-running operation, as Azure does. */
  code?: CapacityCode;
}

/**
 * A failure to inject. The next `times` requests matching every given field get it.
 * `async: true` accepts a PUT and fails its long-running operation instead; `hang: true`
 * never answers (the client's own deadline must end the call).
 */
export interface Fault {
  method?: 'GET' | 'PUT' | 'DELETE' | 'POST';
  resource?:
    | 'virtualMachines'
    | 'networkInterfaces'
    | 'publicIPAddresses'
    | 'networkSecurityGroups'
    | 'disks'
    | 'snapshots'
    | 'usages'
    | 'operations';
  name?: string;
  times?: number;
  status?: number;
  code?: string;
  message?: string;
  retryAfterSeconds?: number;
  hang?: boolean;
  async?: boolean;
}

export interface ArmFakeOptions {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  /** Usage limits by usage name (`cores`, `lowPriorityCores`, family names). Missing: 0. */
  quotas?: Record<string, number>;
  /** Seed of ids (vmId, operation ids, private and public IPs): same seed, same ids. */
  seed?: number;
  /** Polls of a long-running operation before it finishes (default 2). */
  lroPolls?: number;
  /** And at least this long after it started (default 0): a create's latency. */
  lroLatencyMs?: number;
  capacity?: CapacityRule[];
  sizes?: Record<string, VmSizeInfo>;
  /** Notice between a Preempt scheduled event and the eviction (default 30 s, as Azure). */
  evictionNoticeMs?: number;
  /** Wall clock for timestamps (default Date.now). */
  now?: () => number;
  host?: string;
  /** 0 (default) picks a free port. */
  port?: number;
}

export interface Operation {
  id: string;
  provider: 'Microsoft.Compute' | 'Microsoft.Network';
  startedAt: number;
  polls: number;
  status: 'InProgress' | 'Succeeded' | 'Failed';
  endedAt?: number;
  error?: ArmErrorBody;
  /** Applies the operation's effect; returns an error when the operation fails. */
  finish: () => ArmErrorBody | undefined;
}

export interface VmNicRef {
  id: string;
  name: string;
  primary: boolean;
  deleteOption: DeleteOption;
}

export interface VmDiskRef {
  lun: number;
  name: string;
  id: string;
  deleteOption: DeleteOption;
}

export interface FakeVm {
  name: string;
  id: string;
  vmId: string;
  tags: Record<string, string>;
  zone: string | null;
  size: string;
  vcpus: number;
  family: string;
  priority: Priority;
  evictionPolicy: 'Deallocate' | 'Delete' | null;
  maxPrice: number | null;
  provisioningState: 'Creating' | 'Succeeded' | 'Failed' | 'Deleting';
  powerState: 'starting' | 'running' | 'deallocated';
  nics: VmNicRef[];
  osDisk: { name: string; id: string; deleteOption: DeleteOption; sizeGb: number; sku: string };
  dataDisks: VmDiskRef[];
  imageReference: Record<string, unknown>;
  /** osProfile as sent, without adminPassword (ARM never returns it). */
  osProfile: Record<string, unknown>;
  userData: string | null;
  createdAt: string;
  operation: Operation | null;
  capacityRule: CapacityRule | null;
  /** Set when the create was accepted but its allocation will fail. */
  pendingFailure: ArmErrorBody | null;
}

export interface FakeDisk {
  name: string;
  id: string;
  uniqueId: string;
  tags: Record<string, string>;
  zone: string | null;
  sizeGb: number;
  sku: string;
  managedBy: string | null;
  /** Unattached, Attached, or Reserved (attached to a deallocated VM). */
  diskState: 'Unattached' | 'Attached' | 'Reserved';
  provisioningState: 'Creating' | 'Succeeded' | 'Deleting';
  creationData: Record<string, unknown>;
  createdAt: string;
  operation: Operation | null;
}

export interface FakeSnapshot {
  name: string;
  id: string;
  uniqueId: string;
  tags: Record<string, string>;
  sizeGb: number;
  sourceResourceId: string;
  sourceUniqueId: string;
  incremental: boolean;
  provisioningState: 'Creating' | 'Succeeded' | 'Deleting';
  createdAt: string;
  operation: Operation | null;
}

export interface FakeNic {
  name: string;
  id: string;
  tags: Record<string, string>;
  subnetId: string;
  privateIp: string;
  macAddress: string;
  virtualMachineId: string | null;
  /** The public IP on its ipconfig (a `publicIPAddresses` resource), if any. */
  publicIpName: string | null;
  /** The network security group on the NIC (a `networkSecurityGroups` resource), if any. */
  networkSecurityGroupName: string | null;
  provisioningState: 'Updating' | 'Succeeded' | 'Deleting';
  createdAt: string;
  operation: Operation | null;
}

/** A Microsoft.Network/publicIPAddresses resource (IPv4; Standard or Basic as sent). */
export interface FakePublicIp {
  name: string;
  id: string;
  tags: Record<string, string>;
  sku: string;
  allocationMethod: 'Static' | 'Dynamic';
  /** From the documentation ranges (203.0.113.0/24 first), seeded like the private IPs. */
  ipAddress: string;
  /** The NIC ipconfig it is attached to, if any. */
  ipConfigurationId: string | null;
  provisioningState: 'Updating' | 'Succeeded' | 'Deleting';
  createdAt: string;
  operation: Operation | null;
}

/** One security rule, its single/plural ARM fields kept as lists. */
export interface FakeSecurityRule {
  name: string;
  description?: string;
  protocol: string;
  access: 'Allow' | 'Deny';
  direction: 'Inbound' | 'Outbound';
  priority: number;
  sourceAddressPrefixes: string[];
  sourcePortRanges: string[];
  destinationAddressPrefixes: string[];
  destinationPortRanges: string[];
}

/** A Microsoft.Network/networkSecurityGroups resource; its rules are kept, not enforced. */
export interface FakeNsg {
  name: string;
  id: string;
  tags: Record<string, string>;
  /** As the last PUT sent them (a PUT replaces them all). */
  rules: FakeSecurityRule[];
  resourceGuid: string;
  /** Counts PUTs, for the etag. */
  generation: number;
  provisioningState: 'Updating' | 'Succeeded' | 'Deleting';
  createdAt: string;
  operation: Operation | null;
}

export interface UsageFigure {
  name: string;
  current: number;
  limit: number;
}

/** Azure Scheduled Events document (the IMDS shape), as the VM's agent would read it. */
export interface ScheduledEventsDocument {
  DocumentIncarnation: number;
  Events: {
    EventId: string;
    EventStatus: 'Scheduled' | 'Started';
    EventType: 'Preempt';
    ResourceType: 'VirtualMachine';
    Resources: string[];
    NotBefore: string;
    Description: string;
    EventSource: 'Platform';
    DurationInSeconds: number;
  }[];
}

/** What happened to a VM, for tests and the VM-agent simulator. */
export type FakeVmEvent =
  | { type: 'vm.running'; vmName: string; tags: Record<string, string>; at: string }
  | { type: 'vm.failed'; vmName: string; code: string; at: string }
  | { type: 'vm.preempt'; vmName: string; eventId: string; notBefore: string; at: string }
  | {
      type: 'vm.evicted';
      vmName: string;
      policy: 'Deallocate' | 'Delete';
      dataDisks: string[];
      at: string;
    }
  | { type: 'vm.deleted'; vmName: string; at: string };

export interface RequestRecord {
  method: string;
  path: string;
  query: Record<string, string>;
  status: number;
}

/** One request as the router hands it to a handler. */
export interface ArmRequest {
  method: string;
  name: string | undefined;
  action: string | undefined;
  query: URLSearchParams;
  body: unknown;
  /** An injected `async` fault for this request: accept it, fail its operation. */
  asyncFault: { code: string; message: string } | undefined;
}

export interface ArmReply {
  status: number;
  body?: unknown;
  /** A plain-text body instead (IMDS's `format=text`). */
  text?: string;
  headers?: Record<string, string>;
}
