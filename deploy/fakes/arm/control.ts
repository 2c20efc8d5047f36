/**
 * The fake's own controls over HTTP, under /_fake/, for a process that cannot call the
 * in-process handle (the local sandbox, a VM-agent simulator, a load generator). Not ARM.
 */
import { z } from 'zod';
import { ArmError } from './errors.ts';
import { evict, preempt } from './eviction.ts';
import type { ArmReply } from './model.ts';
import { nicsOf } from './security-group.ts';
import type { World } from './world.ts';
import { parseBody } from './wire.ts';

const priority = z.enum(['Spot', 'Regular']);
const CapacityRules = z.array(
  z.object({
    size: z.string().optional(),
    priority: priority.optional(),
    zone: z.string().optional(),
    available: z.number().int().min(0).optional(),
    code: z
      .enum([
        'SkuNotAvailable',
        'AllocationFailed',
        'ZonalAllocationFailed',
        'OverconstrainedAllocationRequest',
        'OverconstrainedZonalAllocationRequest',
      ])
      .optional(),
  }),
);
const Quotas = z.record(z.string(), z.number().int().min(0));
const FaultBody = z.object({
  method: z.enum(['GET', 'PUT', 'DELETE', 'POST']).optional(),
  resource: z
    .enum([
      'virtualMachines',
      'networkInterfaces',
      'publicIPAddresses',
      'networkSecurityGroups',
      'disks',
      'snapshots',
      'usages',
      'operations',
    ])
    .optional(),
  name: z.string().optional(),
  times: z.number().int().positive().optional(),
  status: z.number().int().min(400).max(599).optional(),
  code: z.string().optional(),
  message: z.string().optional(),
  retryAfterSeconds: z.number().int().min(0).optional(),
  hang: z.boolean().optional(),
  async: z.boolean().optional(),
});
const EvictBody = z.object({ vm: z.string(), noticeMs: z.number().int().min(0).optional() });

function snapshot(world: World): unknown {
  return {
    vms: [...world.vms.values()].map((v) => ({
      name: v.name,
      size: v.size,
      priority: v.priority,
      zone: v.zone,
      provisioningState: v.provisioningState,
      powerState: v.powerState,
      tags: v.tags,
    })),
    disks: [...world.disks.values()].map((d) => ({
      name: d.name,
      sizeGb: d.sizeGb,
      diskState: d.diskState,
      managedBy: d.managedBy,
      tags: d.tags,
    })),
    snapshots: [...world.snapshots.values()].map((s) => ({ name: s.name, sizeGb: s.sizeGb })),
    nics: [...world.nics.values()].map((n) => ({
      name: n.name,
      virtualMachineId: n.virtualMachineId,
      publicIpName: n.publicIpName,
      networkSecurityGroupName: n.networkSecurityGroupName,
    })),
    publicIps: [...world.publicIps.values()].map((p) => ({
      name: p.name,
      ipAddress: p.ipAddress,
      ipConfigurationId: p.ipConfigurationId,
    })),
    networkSecurityGroups: [...world.nsgs.values()].map((g) => ({
      name: g.name,
      provisioningState: g.provisioningState,
      rules: g.rules,
      networkInterfaces: nicsOf(world, g),
      tags: g.tags,
    })),
    usage: world.usage(),
  };
}

export function control(world: World, method: string, path: string, body: unknown): ArmReply {
  const route = `${method} ${path.toLowerCase()}`;
  switch (route) {
    case 'GET /_fake/state':
      return { status: 200, body: snapshot(world) };
    case 'PUT /_fake/capacity':
      world.capacity = parseBody(CapacityRules, body).map((r) => ({ ...r }));
      return { status: 204 };
    case 'PUT /_fake/quotas':
      Object.assign(world.quotas, parseBody(Quotas, body));
      return { status: 204 };
    case 'POST /_fake/faults':
      world.faults.push(parseBody(FaultBody, body));
      return { status: 204 };
    case 'POST /_fake/settle':
      world.settle();
      return { status: 204 };
    case 'POST /_fake/preempt': {
      const b = parseBody(EvictBody, body);
      return { status: 200, body: { eventId: preempt(world, b.vm, b.noticeMs) } };
    }
    case 'POST /_fake/evict':
      evict(world, parseBody(EvictBody, body).vm);
      return { status: 204 };
    default:
      throw new ArmError(404, 'NotFound', `No fake control at ${method} ${path}.`);
  }
}
