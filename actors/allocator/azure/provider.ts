/**
 * The VmProvider on Azure, through @azure/arm-compute and @azure/arm-network. Each call is one
 * bounded attempt: no SDK-level retries (the caller decides from the error's kind), long-running
 * operations polled every `pollIntervalMs`, and the whole call given up after its deadline.
 */
import { ComputeManagementClient } from '@azure/arm-compute';
import { NetworkManagementClient } from '@azure/arm-network';
import type { TokenCredential } from '@azure/identity';
import type { Logger } from 'pino';
import { createCaller } from './call.ts';
import { createDiskOperations } from './disks.ts';
import {
  lastSegment,
  matchesFilter,
  securityRule,
  tagsOf,
  toNicInfo,
  toSecurityGroupInfo,
  toVmInfo,
  vmParameters,
} from './mapping.ts';
import { ProviderError, ProviderErrorKinds, type VmProvider } from './port.ts';

export interface AzureVmProviderOptions {
  subscriptionId: string;
  resourceGroup: string;
  location: string;
  credential: TokenCredential;
  /** ARM base URL (default https://management.azure.com); the fake's URL in tests. */
  endpoint?: string;
  /** PEM certificate(s) to trust for `endpoint` (the fake's self-signed one). */
  caCert?: string;
  /** Subnet for VM NICs (default: virtualNetworks/respawn-vnet/subnets/vms in the group). */
  subnetId?: string;
  /** Delay between polls of a long-running operation (default 2 s; Retry-After overrides). */
  pollIntervalMs?: number;
  /** Longest a call with a long-running operation may take (default 15 min). */
  operationTimeoutMs?: number;
  /** Longest a plain request may take (default 30 s). */
  requestTimeoutMs?: number;
  /** SDK-level retries per HTTP request (default 0: errors reach the caller, classified). */
  maxRetries?: number;
  log: Logger;
}

export function createAzureVmProvider(opts: AzureVmProviderOptions): VmProvider {
  const { subscriptionId, resourceGroup: rg, location } = opts;
  const log = opts.log.child({ component: 'azure', location });
  const clientOptions = {
    ...(opts.endpoint === undefined ? {} : { endpoint: opts.endpoint }),
    ...(opts.caCert === undefined ? {} : { tlsOptions: { ca: opts.caCert } }),
    retryOptions: { maxRetries: opts.maxRetries ?? 0 },
  };
  const compute = new ComputeManagementClient(opts.credential, subscriptionId, clientOptions);
  const network = new NetworkManagementClient(opts.credential, subscriptionId, clientOptions);
  const interval = opts.pollIntervalMs ?? 2_000;
  const operationTimeoutMs = opts.operationTimeoutMs ?? 15 * 60_000;
  const requestTimeoutMs = opts.requestTimeoutMs ?? 30_000;
  const groupId = `/subscriptions/${subscriptionId}/resourceGroups/${rg}`;
  const subnetId =
    opts.subnetId ??
    `${groupId}/providers/Microsoft.Network/virtualNetworks/respawn-vnet/subnets/vms`;
  const computeId = (type: string, name: string): string =>
    `${groupId}/providers/Microsoft.Compute/${type}/${name}`;
  const nicId = (name: string): string =>
    `${groupId}/providers/Microsoft.Network/networkInterfaces/${name}`;
  const publicIpId = (name: string): string =>
    `${groupId}/providers/Microsoft.Network/publicIPAddresses/${name}`;
  const nsgId = (name: string): string =>
    `${groupId}/providers/Microsoft.Network/networkSecurityGroups/${name}`;

  const caller = createCaller(log);
  const { run, orNull, checkName } = caller;

  const lro = (signal: AbortSignal) => ({ updateIntervalInMs: interval, abortSignal: signal });

  const disks = createDiskOperations({
    compute,
    caller,
    resourceGroup: rg,
    location,
    computeId,
    lro,
    operationTimeoutMs,
    requestTimeoutMs,
  });

  return {
    location,

    ensureNic(spec) {
      const fields = {
        nic: spec.name,
        publicIp: spec.publicIpName ?? null,
        nsg: spec.securityGroupName ?? null,
      };
      return run('ensureNic', fields, operationTimeoutMs, async (signal) => {
        checkName('ensureNic', spec.name, 80);
        if (spec.publicIpName !== undefined) checkName('ensureNic', spec.publicIpName, 80);
        if (spec.securityGroupName !== undefined)
          checkName('ensureNic', spec.securityGroupName, 80);
        // Standard SKU: Basic public IPs are retired. Static: the address the player is given
        // stays the VM's for its life. No zones: the region's default (zone-redundant where
        // the region has zones) fits a VM in any zone.
        const publicIp =
          spec.publicIpName === undefined
            ? undefined
            : await network.publicIPAddresses.beginCreateOrUpdateAndWait(
                rg,
                spec.publicIpName,
                {
                  location,
                  tags: tagsOf(spec.tags),
                  sku: { name: 'Standard', tier: 'Regional' },
                  publicIPAllocationMethod: 'Static',
                  publicIPAddressVersion: 'IPv4',
                },
                lro(signal),
              );
        const nic = await network.networkInterfaces.beginCreateOrUpdateAndWait(
          rg,
          spec.name,
          {
            location,
            tags: tagsOf(spec.tags),
            // Without it a PUT takes the NSG off a NIC that had one: the NIC is what the spec says.
            ...(spec.securityGroupName === undefined
              ? {}
              : { networkSecurityGroup: { id: nsgId(spec.securityGroupName) } }),
            ipConfigurations: [
              {
                name: 'ipconfig1',
                subnet: { id: subnetId },
                privateIPAllocationMethod: 'Dynamic',
                ...(spec.publicIpName === undefined
                  ? {}
                  : { publicIPAddress: { id: publicIpId(spec.publicIpName) } }),
              },
            ],
          },
          lro(signal),
        );
        return toNicInfo(nic, publicIp);
      });
    },

    ensureSecurityGroup(spec) {
      const fields = { nsg: spec.name, rules: spec.rules.map((r) => r.name) };
      return run('ensureSecurityGroup', fields, operationTimeoutMs, async (signal) => {
        checkName('ensureSecurityGroup', spec.name, 80);
        // The whole rule set, every time: a PUT is a convergence, rules not named here go.
        const nsg = await network.networkSecurityGroups.beginCreateOrUpdateAndWait(
          rg,
          spec.name,
          { location, tags: tagsOf(spec.tags), securityRules: spec.rules.map(securityRule) },
          lro(signal),
        );
        return toSecurityGroupInfo(nsg);
      });
    },

    createOrUpdateVm(spec) {
      const fields = { vm: spec.name, size: spec.size, tier: spec.tier, zone: spec.zone ?? null };
      return run('createOrUpdateVm', fields, operationTimeoutMs, async (signal) => {
        checkName('createOrUpdateVm', spec.name, 64);
        checkName('createOrUpdateVm', spec.nicName, 80);
        checkName('createOrUpdateVm', spec.dataDiskName, 80);
        let parameters;
        try {
          parameters = vmParameters(spec, {
            location,
            nicId: nicId(spec.nicName),
            dataDiskId: computeId('disks', spec.dataDiskName),
          });
        } catch (err) {
          throw new ProviderError(
            {
              kind: ProviderErrorKinds.other,
              code: 'InvalidImage',
              message: (err as Error).message,
              operation: 'createOrUpdateVm',
            },
            err,
          );
        }
        const poller = compute.virtualMachines.createOrUpdate(
          rg,
          spec.name,
          parameters,
          lro(signal),
        );
        return toVmInfo(await poller.pollUntilDone({ abortSignal: signal }));
      });
    },

    getVm(name) {
      return run('getVm', { vm: name }, requestTimeoutMs, async (signal) => {
        checkName('getVm', name, 64);
        const vm = await orNull(
          compute.virtualMachines.get(rg, name, { expand: 'instanceView', abortSignal: signal }),
          'getVm',
        );
        return vm === null ? null : toVmInfo(vm);
      });
    },

    deleteVm(name, options = {}) {
      return run('deleteVm', { vm: name }, operationTimeoutMs, async (signal) => {
        checkName('deleteVm', name, 64);
        if (options.publicIpName !== undefined) checkName('deleteVm', options.publicIpName, 80);
        const vm = await orNull(
          compute.virtualMachines.get(rg, name, { abortSignal: signal }),
          'deleteVm',
        );
        const nics = new Set<string>(options.nicName === undefined ? [] : [options.nicName]);
        if (vm !== null) {
          const unsafe = (vm.storageProfile?.dataDisks ?? []).filter(
            (d) => d.deleteOption === 'Delete',
          );
          if (unsafe.length > 0) {
            // Deleting it would delete a player's disk with it; a person must look at this VM.
            throw new ProviderError({
              kind: ProviderErrorKinds.conflict,
              code: 'DataDiskWouldBeDeleted',
              message: `VM ${name} has data disk(s) ${unsafe.map((d) => d.name ?? '?').join(', ')} set to be deleted with it`,
              operation: 'deleteVm',
            });
          }
          for (const n of vm.networkProfile?.networkInterfaces ?? []) {
            const nic = lastSegment(n.id);
            if (nic !== null) nics.add(nic);
          }
          await compute.virtualMachines
            .delete(rg, name, lro(signal))
            .pollUntilDone({ abortSignal: signal });
        }
        for (const nic of nics) {
          checkName('deleteVm', nic, 80);
          await network.networkInterfaces.beginDeleteAndWait(rg, nic, lro(signal));
        }
        // Only now: Azure refuses to delete a public IP its NIC still holds.
        if (options.publicIpName !== undefined) {
          await orNull(
            network.publicIPAddresses.beginDeleteAndWait(rg, options.publicIpName, lro(signal)),
            'deleteVm',
          );
        }
      });
    },

    listVms(filter = {}) {
      return run('listVms', {}, requestTimeoutMs, async (signal) => {
        const out = [];
        for await (const vm of compute.virtualMachines.list(rg, { abortSignal: signal })) {
          if (matchesFilter(vm.tags, filter)) out.push(toVmInfo(vm));
        }
        return out;
      });
    },

    getUsage(names) {
      return run('getUsage', {}, requestTimeoutMs, async (signal) => {
        const out = [];
        for await (const u of compute.usage.list(location, { abortSignal: signal })) {
          const name = u.name.value ?? '';
          if (names === undefined || names.includes(name))
            out.push({ name, current: u.currentValue, limit: u.limit });
        }
        return out;
      });
    },

    ...disks,
  };
}
