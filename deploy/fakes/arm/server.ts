/**
 * startArmFake: an in-memory, ARM-compatible HTTPS server for virtual machines, network
 * interfaces, public IPs, network security groups, disks, snapshots and usages, with
 * long-running operations, quota, capacity failures, injected faults (429 with Retry-After,
 * 5xx, hangs) and Spot evictions.
 * The real Azure SDK talks to it through its `endpoint` option (docs/azure.md).
 */
import { createServer } from 'node:https';
import type { ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createSelfSignedCert } from './cert.ts';
import { evict, preempt, scheduledEvents } from './eviction.ts';
import type {
  ArmFakeOptions,
  CapacityRule,
  Fault,
  FakeDisk,
  FakeNic,
  FakeNsg,
  FakePublicIp,
  FakeSnapshot,
  FakeVm,
  FakeVmEvent,
  RequestRecord,
  ScheduledEventsDocument,
  UsageFigure,
} from './model.ts';
import { createRouter } from './router.ts';
import { createWorld, resourceKey as key } from './world.ts';

export type FakeVmView = Omit<FakeVm, 'operation' | 'capacityRule' | 'pendingFailure'>;
export type FakeDiskView = Omit<FakeDisk, 'operation'>;
export type FakeSnapshotView = Omit<FakeSnapshot, 'operation'>;
export type FakeNicView = Omit<FakeNic, 'operation'>;
export type FakePublicIpView = Omit<FakePublicIp, 'operation'>;
export type FakeNsgView = Omit<FakeNsg, 'operation'>;

/** Read-only copies of what the fake holds. */
export interface ArmFakeState {
  vms(): FakeVmView[];
  vm(name: string): FakeVmView | undefined;
  disks(): FakeDiskView[];
  disk(name: string): FakeDiskView | undefined;
  snapshots(): FakeSnapshotView[];
  nics(): FakeNicView[];
  nic(name: string): FakeNicView | undefined;
  publicIps(): FakePublicIpView[];
  publicIp(name: string): FakePublicIpView | undefined;
  nsgs(): FakeNsgView[];
  nsg(name: string): FakeNsgView | undefined;
  usage(): UsageFigure[];
  requests(): RequestRecord[];
}

export interface ArmFake {
  /** Base URL for the SDK's `endpoint` option, e.g. https://127.0.0.1:40123 */
  url: string;
  /** The self-signed certificate (PEM) to trust, and its file for NODE_EXTRA_CA_CERTS. */
  caCert: string;
  caCertPath: string;
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  state: ArmFakeState;
  injectFault(fault: Fault): void;
  /** Shorthand: the next `times` matching requests get 429 with Retry-After. */
  injectThrottle(opts?: Omit<Fault, 'status' | 'hang' | 'async'>): void;
  setCapacity(rules: CapacityRule[]): void;
  setQuota(name: string, limit: number): void;
  /** Announces a Spot eviction (Preempt) and evicts after the notice. Returns the event id. */
  preempt(vmName: string, opts?: { noticeMs?: number }): string;
  /** Evicts a Spot VM now, per its eviction policy. */
  evict(vmName: string): void;
  /** The VM's Azure Scheduled Events document, as its agent would read it from IMDS. */
  scheduledEvents(vmName: string): ScheduledEventsDocument;
  onEvent(listener: (event: FakeVmEvent) => void): () => void;
  /** Finishes every long-running operation still running. */
  settle(): void;
  stop(): Promise<void>;
}

function copy<T>(value: T): T {
  return structuredClone(value);
}

function vmView(vm: FakeVm): FakeVmView {
  const { operation: _o, capacityRule: _c, pendingFailure: _p, ...rest } = vm;
  return copy(rest);
}

function strip<T extends { operation: unknown }>(value: T): Omit<T, 'operation'> {
  const { operation: _o, ...rest } = value;
  return copy(rest);
}

export async function startArmFake(opts: ArmFakeOptions): Promise<ArmFake> {
  const cert = await createSelfSignedCert();
  const world = createWorld(opts);
  const hung = new Set<ServerResponse>();
  const server = createServer({ cert: cert.cert, key: cert.key }, createRouter(world, hung));
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const { port } = server.address() as AddressInfo;
  const url = `https://${host.includes(':') ? `[${host}]` : host}:${port}`;
  world.baseUrl = url;

  return {
    url,
    caCert: cert.cert,
    caCertPath: cert.certPath,
    subscriptionId: opts.subscriptionId,
    resourceGroup: opts.resourceGroup,
    location: opts.location,
    state: {
      vms: () => [...world.vms.values()].map(vmView),
      vm: (name) => {
        const vm = world.vms.get(key(name));
        return vm === undefined ? undefined : vmView(vm);
      },
      disks: () => [...world.disks.values()].map(strip),
      disk: (name) => {
        const d = world.disks.get(key(name));
        return d === undefined ? undefined : strip(d);
      },
      snapshots: () => [...world.snapshots.values()].map(strip),
      nics: () => [...world.nics.values()].map(strip),
      nic: (name) => {
        const n = world.nics.get(key(name));
        return n === undefined ? undefined : strip(n);
      },
      publicIps: () => [...world.publicIps.values()].map(strip),
      publicIp: (name) => {
        const p = world.publicIps.get(key(name));
        return p === undefined ? undefined : strip(p);
      },
      nsgs: () => [...world.nsgs.values()].map(strip),
      nsg: (name) => {
        const g = world.nsgs.get(key(name));
        return g === undefined ? undefined : strip(g);
      },
      usage: () => world.usage(),
      requests: () => copy(world.requests),
    },
    injectFault: (fault) => void world.faults.push({ ...fault }),
    injectThrottle: (fault = {}) =>
      void world.faults.push({
        retryAfterSeconds: 1,
        ...fault,
        status: 429,
        code: fault.code ?? 'TooManyRequests',
      }),
    setCapacity: (rules) => {
      world.capacity = rules.map((r) => ({ ...r }));
    },
    setQuota: (name, limit) => {
      world.quotas[name] = limit;
    },
    preempt: (vmName, o = {}) => preempt(world, vmName, o.noticeMs),
    evict: (vmName) => evict(world, vmName),
    scheduledEvents: (vmName) => scheduledEvents(world, vmName),
    onEvent: (listener) => world.onEvent(listener),
    settle: () => world.settle(),
    async stop() {
      for (const t of world.timers) clearTimeout(t);
      world.timers.clear();
      for (const res of hung) res.destroy();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      await cert.dispose();
    },
  };
}
