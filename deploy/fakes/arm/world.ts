/**
 * The fake's in-memory ARM: resources, long-running operations, usage (quota), capacity,
 * injected faults and VM events. Handlers (compute.ts, storage.ts, network.ts, public-ip.ts,
 * security-group.ts) act on it.
 */
import {
  ArmError,
  CapacityCodes,
  capacityMessage,
  quotaExceeded,
  type ArmErrorBody,
  type CapacityCode,
} from './errors.ts';
import {
  DEFAULT_QUOTAS,
  DEFAULT_SIZES,
  REGIONAL_CORES,
  SPOT_CORES,
  type ArmFakeOptions,
  type CapacityRule,
  type Fault,
  type FakeDisk,
  type FakeNic,
  type FakeNsg,
  type FakePublicIp,
  type FakeSnapshot,
  type FakeVm,
  type FakeVmEvent,
  type Operation,
  type Priority,
  type RequestRecord,
  type ScheduledEventsDocument,
  type UsageFigure,
  type VmSizeInfo,
} from './model.ts';
import { createRng, type Rng } from './rng.ts';

const MAX_REQUEST_LOG = 10_000;

export interface World {
  readonly subscriptionId: string;
  readonly resourceGroup: string;
  readonly location: string;
  readonly lroPolls: number;
  readonly lroLatencyMs: number;
  readonly evictionNoticeMs: number;
  readonly rng: Rng;
  baseUrl: string;
  readonly sizes: Record<string, VmSizeInfo>;
  readonly quotas: Record<string, number>;
  capacity: CapacityRule[];
  readonly faults: Fault[];
  readonly vms: Map<string, FakeVm>;
  readonly disks: Map<string, FakeDisk>;
  readonly snapshots: Map<string, FakeSnapshot>;
  readonly nics: Map<string, FakeNic>;
  readonly publicIps: Map<string, FakePublicIp>;
  readonly nsgs: Map<string, FakeNsg>;
  readonly operations: Map<string, Operation>;
  readonly scheduledEvents: Map<string, ScheduledEventsDocument>;
  readonly requests: RequestRecord[];
  readonly timers: Set<NodeJS.Timeout>;
  now(): number;
  iso(): string;
  emit(event: FakeVmEvent): void;
  onEvent(listener: (event: FakeVmEvent) => void): () => void;
  record(entry: RequestRecord): void;
  rgId(): string;
  resourceId(
    provider: 'Microsoft.Compute' | 'Microsoft.Network',
    type: string,
    name: string,
  ): string;
  startOperation(provider: Operation['provider'], finish: Operation['finish']): Operation;
  /** Counts one poll of `op` and finishes it when it has been polled (and aged) enough. */
  tick(op: Operation): void;
  finish(op: Operation): void;
  /** Finishes every operation still running. */
  settle(): void;
  operationUrl(op: Operation): string;
  usage(): UsageFigure[];
  /** Throws Azure's quota refusal if a VM of `size`/`priority` does not fit. */
  checkQuota(size: string, priority: Priority): void;
  /** Takes a place for a VM; returns the capacity failure to report, if there is no place. */
  place(
    size: string,
    priority: Priority,
    zone: string | null,
  ): { rule: CapacityRule | null; failure: ArmErrorBody | null; sync: boolean };
  release(rule: CapacityRule | null): void;
  sizeInfo(size: string): VmSizeInfo;
}

const key = (name: string): string => name.toLowerCase();
export { key as resourceKey };

export function createWorld(opts: ArmFakeOptions): World {
  const now = opts.now ?? Date.now;
  const listeners = new Set<(event: FakeVmEvent) => void>();
  const sizes = { ...DEFAULT_SIZES, ...opts.sizes };
  const quotas = { ...(opts.quotas ?? DEFAULT_QUOTAS) };
  const vms = new Map<string, FakeVm>();

  const usageOf = (name: string): number => {
    let total = 0;
    // Azure counts allocated and deallocated VMs alike; a failed create still holds its cores
    // until it is deleted.
    for (const vm of vms.values()) {
      if (name === SPOT_CORES && vm.priority === 'Spot') total += vm.vcpus;
      if (name === REGIONAL_CORES && vm.priority === 'Regular') total += vm.vcpus;
      if (name === vm.family && vm.priority === 'Regular') total += vm.vcpus;
    }
    return total;
  };

  const world: World = {
    subscriptionId: opts.subscriptionId,
    resourceGroup: opts.resourceGroup,
    location: opts.location,
    lroPolls: opts.lroPolls ?? 2,
    lroLatencyMs: opts.lroLatencyMs ?? 0,
    evictionNoticeMs: opts.evictionNoticeMs ?? 30_000,
    rng: createRng(opts.seed ?? 1),
    baseUrl: '',
    sizes,
    quotas,
    capacity: (opts.capacity ?? []).map((r) => ({ ...r })),
    faults: [],
    vms,
    disks: new Map(),
    snapshots: new Map(),
    nics: new Map(),
    publicIps: new Map(),
    nsgs: new Map(),
    operations: new Map(),
    scheduledEvents: new Map(),
    requests: [],
    timers: new Set(),
    now,
    iso: () => new Date(now()).toISOString(),
    emit(event) {
      for (const l of listeners) l(event);
    },
    onEvent(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    record(entry) {
      world.requests.push(entry);
      if (world.requests.length > MAX_REQUEST_LOG) world.requests.shift();
    },
    rgId: () => `/subscriptions/${opts.subscriptionId}/resourceGroups/${opts.resourceGroup}`,
    resourceId: (provider, type, name) => `${world.rgId()}/providers/${provider}/${type}/${name}`,
    startOperation(provider, finish) {
      const op: Operation = {
        id: world.rng.uuid(),
        provider,
        startedAt: now(),
        polls: 0,
        status: 'InProgress',
        finish,
      };
      world.operations.set(op.id, op);
      return op;
    },
    tick(op) {
      if (op.status !== 'InProgress') return;
      op.polls += 1;
      if (op.polls >= world.lroPolls && now() - op.startedAt >= world.lroLatencyMs)
        world.finish(op);
    },
    finish(op) {
      if (op.status !== 'InProgress') return;
      const error = op.finish();
      op.status = error === undefined ? 'Succeeded' : 'Failed';
      if (error !== undefined) op.error = error;
      op.endedAt = now();
    },
    settle() {
      for (const op of world.operations.values()) world.finish(op);
    },
    operationUrl: (op) =>
      `${world.baseUrl}/subscriptions/${opts.subscriptionId}/providers/${op.provider}/locations/` +
      `${opts.location}/operations/${op.id}?api-version=2026-03-01`,
    usage() {
      const names = new Set([REGIONAL_CORES, SPOT_CORES, ...Object.keys(quotas)]);
      for (const s of Object.values(sizes)) names.add(s.family);
      return [...names].map((name) => ({ name, current: usageOf(name), limit: quotas[name] ?? 0 }));
    },
    checkQuota(size, priority) {
      const info = world.sizeInfo(size);
      const checks =
        priority === 'Spot'
          ? [{ name: SPOT_CORES, label: 'LowPriorityCores' }]
          : [
              { name: info.family, label: `${info.family} Cores` },
              { name: REGIONAL_CORES, label: 'Total Regional Cores' },
            ];
      for (const { name, label } of checks) {
        const limit = quotas[name] ?? 0;
        const current = usageOf(name);
        if (current + info.vcpus > limit) {
          throw quotaExceeded({
            quotaLabel: label,
            location: opts.location,
            limit,
            current,
            required: info.vcpus,
          });
        }
      }
    },
    place(size, priority, zone) {
      const rule = world.capacity.find(
        (r) =>
          (r.size === undefined || r.size.toLowerCase() === size.toLowerCase()) &&
          (r.priority === undefined || r.priority === priority) &&
          (r.zone === undefined || r.zone === zone),
      );
      if (rule === undefined) return { rule: null, failure: null, sync: false };
      if ((rule.available ?? 0) > 0) {
        rule.available = (rule.available ?? 0) - 1;
        return { rule, failure: null, sync: false };
      }
      const code: CapacityCode =
        rule.code ??
        (zone === null ? CapacityCodes.allocationFailed : CapacityCodes.zonalAllocationFailed);
      return {
        rule: null,
        failure: { code, message: capacityMessage(code, size, opts.location, zone) },
        sync: code === CapacityCodes.skuNotAvailable,
      };
    },
    release(rule) {
      if (rule !== null) rule.available = (rule.available ?? 0) + 1;
    },
    sizeInfo(size) {
      const found = Object.entries(sizes).find(
        ([name]) => name.toLowerCase() === size.toLowerCase(),
      );
      if (found === undefined) {
        throw new ArmError(
          400,
          'InvalidParameter',
          `The value '${size}' of parameter 'vmSize' is not a known VM size.`,
        );
      }
      return found[1];
    },
  };
  return world;
}
