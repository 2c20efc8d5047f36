/**
 * VmProvider: the only way the allocator, session and reconciler reach the cloud. Plain data
 * in and out (no SDK type leaks); every call returns or throws a ProviderError whose `kind`
 * says what the caller should do next.
 */
import type { Tier } from '../../../contracts/index.ts';

/** Tags every Respawn resource carries (cost tracking, the reconciler's listing). */
export interface ResourceTags {
  player: string;
  /** The session it was made for (a VM, its NIC and IP; a disk made at a first play). */
  session?: string;
  /** The VM's tier (a VM, its NIC and IP; a disk made with a VM). */
  tier?: Tier;
  /** What the resource is for, e.g. `session-vm`, `player-disk`, `disk-snapshot`. */
  purpose: string;
  /** The Azure region whose allocator made it. */
  region?: string;
}

/** Tags of a resource every session shares (the streaming NSG): no player, session or tier. */
export interface SharedResourceTags {
  purpose: string;
  region?: string;
}

/** Filters a listing: every given tag must match. Only Respawn's resources are listed. */
export type TagFilter = Partial<ResourceTags>;

export interface NicSpec {
  /** Derived by the caller from the session, so a retry is the same NIC. */
  name: string;
  /**
   * A Standard static public IPv4 of this name is made first (same tags) and put on the NIC's
   * ipconfig, so players can reach the VM. Omitted: the NIC has a private IP only (an operator
   * with a relay or VPN in front). Derived from the session too, so a retry is the same IP.
   */
  publicIpName?: string;
  /**
   * The network security group (made by `ensureSecurityGroup`) put on the NIC: a Standard public
   * IP lets nothing in until an NSG allows it. Omitted: none on the NIC.
   */
  securityGroupName?: string;
  tags: ResourceTags;
}

/** One inbound allow rule of a network security group. */
export interface InboundRule {
  /** Unique within the group. */
  name: string;
  protocol: 'Tcp' | 'Udp';
  /** Destination ports or ranges, e.g. `47984` or `47998-48000`. */
  ports: readonly string[];
  /** 100–4096, unique within the group; the lower is evaluated first. */
  priority: number;
  /** Where traffic may come from: a CIDR or a service tag (default `Internet`). */
  source?: string;
  /** At most 140 characters (Azure's limit). */
  description?: string;
}

export interface SecurityGroupSpec {
  name: string;
  /** The group's whole rule set: a PUT replaces whatever rules it had. */
  rules: readonly InboundRule[];
  tags: SharedResourceTags;
}

export interface SecurityGroupInfo {
  name: string;
  id: string;
  ruleNames: string[];
  provisioningState: string;
  tags: Record<string, string>;
}

export interface NicInfo {
  name: string;
  id: string;
  privateIp: string | null;
  /** The public IP resource on the NIC's ipconfig, and its address, if any. */
  publicIpName: string | null;
  publicIp: string | null;
  /** The network security group on the NIC, if any. */
  securityGroupName: string | null;
  /** Name of the VM it is attached to, if any. */
  attachedToVm: string | null;
  provisioningState: string;
  tags: Record<string, string>;
}

export interface AdminCredentials {
  username: string;
  /** Windows images need a password; it is sent to Azure only, never logged or returned. */
  password?: string;
  /** Linux images: an OpenSSH public key instead of a password. */
  sshPublicKey?: string;
}

export interface VmSpec {
  /** Derived by the caller from the session: creating the same name twice is the same VM. */
  name: string;
  nicName: string;
  /** e.g. `Standard_NC4as_T4_v3`. */
  size: string;
  tier: Tier;
  /** Availability zone ('1', '2', '3'); omit for a regional VM. */
  zone?: string;
  /** The player's persistent disk, attached at LUN 0 with deleteOption Detach. */
  dataDiskName: string;
  /** OS image: a resource id (image, gallery image version) or `publisher:offer:sku:version`. */
  image: string;
  osDiskSizeGb?: number;
  admin: AdminCredentials;
  /** Given to the VM as Azure userData (base64-encoded here), e.g. the agent's bootstrap. */
  userData?: string;
  tags: ResourceTags;
}

export const PowerStates = {
  starting: 'starting',
  running: 'running',
  stopping: 'stopping',
  stopped: 'stopped',
  deallocating: 'deallocating',
  deallocated: 'deallocated',
  /** Listings carry no instance view; ask getVm. */
  unknown: 'unknown',
} as const;
export type PowerState = (typeof PowerStates)[keyof typeof PowerStates];

export interface VmInfo {
  name: string;
  id: string;
  /** Azure's unique id of this incarnation: a VM deleted and made again has a new one. */
  vmId: string | null;
  size: string;
  tier: Tier;
  zone: string | null;
  evictionPolicy: 'Deallocate' | 'Delete' | null;
  /** Creating, Succeeded, Failed, Deleting, … as Azure says it. */
  provisioningState: string;
  powerState: PowerState;
  nicNames: string[];
  dataDiskNames: string[];
  tags: Record<string, string>;
  createdAt: string | null;
}

export type DiskSource =
  | { kind: 'empty' }
  /** A managed image or platform image id, or a gallery image version id (`lun` picks its data disk). */
  | { kind: 'image'; imageId: string; lun?: number };

export interface DiskSpec {
  name: string;
  sizeGb: number;
  /** Premium_LRS (default), StandardSSD_LRS, … */
  sku?: string;
  zone?: string;
  source: DiskSource;
  tags: ResourceTags;
}

export interface DiskFromSnapshotSpec {
  name: string;
  snapshotName: string;
  sizeGb?: number;
  sku?: string;
  zone?: string;
  tags: ResourceTags;
}

export interface SnapshotSpec {
  name: string;
  diskName: string;
  /** Incremental snapshots (default) store only changes and cost less. */
  incremental?: boolean;
  tags: ResourceTags;
}

export interface DiskInfo {
  name: string;
  id: string;
  sizeGb: number;
  sku: string | null;
  zone: string | null;
  /** Unattached, Attached, Reserved (on a deallocated VM), … as Azure says it. */
  diskState: string | null;
  attachedToVm: string | null;
  provisioningState: string;
  tags: Record<string, string>;
  createdAt: string | null;
}

export interface SnapshotInfo {
  name: string;
  id: string;
  sizeGb: number;
  sourceDiskId: string | null;
  incremental: boolean;
  provisioningState: string;
  tags: Record<string, string>;
  createdAt: string | null;
}

/** One usage (quota) figure: `lowPriorityCores` (Spot vCPUs), a family such as `standardNCASv3_T4Family`, `cores`. */
export interface UsageFigure {
  name: string;
  current: number;
  limit: number;
}

export interface VmProvider {
  readonly location: string;
  ensureNic(spec: NicSpec): Promise<NicInfo>;
  /**
   * Creates the network security group, or converges an existing one on `spec` (rules and
   * tags); idempotent. There is no delete: the group is shared by every session VM's NIC.
   */
  ensureSecurityGroup(spec: SecurityGroupSpec): Promise<SecurityGroupInfo>;
  /** Idempotent by name. Waits for the long-running create (bounded by the operation timeout). */
  createOrUpdateVm(spec: VmSpec): Promise<VmInfo>;
  /** null when there is no such VM. */
  getVm(name: string): Promise<VmInfo | null>;
  /**
   * Deletes the VM, its NIC(s) (those it names, and `nicName` if given, for a VM already
   * gone), then the public IP `publicIpName` (Azure frees it only once its NIC is gone). Never
   * the player's data disk: it is attached with deleteOption Detach. An absent VM, NIC or
   * public IP is not an error.
   */
  deleteVm(name: string, opts?: { nicName?: string; publicIpName?: string }): Promise<void>;
  listVms(filter?: TagFilter): Promise<VmInfo[]>;
  /** Usage figures for `names` (all the region's when omitted). */
  getUsage(names?: readonly string[]): Promise<UsageFigure[]>;
  createDisk(spec: DiskSpec): Promise<DiskInfo>;
  createDiskFromSnapshot(spec: DiskFromSnapshotSpec): Promise<DiskInfo>;
  snapshotDisk(spec: SnapshotSpec): Promise<SnapshotInfo>;
  /** An absent disk is not an error; an attached one is refused (`conflict`). */
  deleteDisk(name: string): Promise<void>;
  getDisk(name: string): Promise<DiskInfo | null>;
  listDisks(filter?: TagFilter): Promise<DiskInfo[]>;
  getSnapshot(name: string): Promise<SnapshotInfo | null>;
  listSnapshots(filter?: TagFilter): Promise<SnapshotInfo[]>;
  deleteSnapshot(name: string): Promise<void>;
}

export const ProviderErrorKinds = {
  /** No room for this size/priority/zone now: mark the candidate cold, try the next. */
  capacity: 'capacity',
  /** The subscription's vCPU quota would be exceeded: refresh usage, try the next candidate. */
  quota: 'quota',
  /** Azure throttled us: retry after `retryAfterMs`. */
  throttled: 'throttled',
  notFound: 'not_found',
  /** The resource is in a state that refuses this now (in use, being deleted, immutable property). */
  conflict: 'conflict',
  /** A 5xx, a network failure or our own deadline: retrying the same idempotent call is safe. */
  transient: 'transient',
  /** Anything else (a bad request, auth): retrying will not help. `code` is Azure's. */
  other: 'other',
} as const;
export type ProviderErrorKind = (typeof ProviderErrorKinds)[keyof typeof ProviderErrorKinds];

/** How a ProviderError crosses a process boundary (a message to an actor). */
export interface ProviderErrorData {
  kind: ProviderErrorKind;
  code: string;
  message: string;
  operation: string;
  statusCode: number | null;
  retryAfterMs: number | null;
}

export class ProviderError extends Error {
  readonly kind: ProviderErrorKind;
  /** Azure's error code (e.g. `AllocationFailed`) or ours (`OperationTimedOut`, `NetworkError`). */
  readonly code: string;
  /** Which provider call failed, e.g. `createOrUpdateVm`. */
  readonly operation: string;
  readonly statusCode: number | null;
  readonly retryAfterMs: number | null;

  constructor(
    data: Omit<ProviderErrorData, 'statusCode' | 'retryAfterMs'> &
      Partial<Pick<ProviderErrorData, 'statusCode' | 'retryAfterMs'>>,
    cause?: unknown,
  ) {
    super(data.message, cause === undefined ? undefined : { cause });
    this.name = 'ProviderError';
    this.kind = data.kind;
    this.code = data.code;
    this.operation = data.operation;
    this.statusCode = data.statusCode ?? null;
    this.retryAfterMs = data.retryAfterMs ?? null;
  }

  toData(): ProviderErrorData {
    return {
      kind: this.kind,
      code: this.code,
      message: this.message,
      operation: this.operation,
      statusCode: this.statusCode,
      retryAfterMs: this.retryAfterMs,
    };
  }
}
