/**
 * Microsoft.Network/networkSecurityGroups in the fake: create or converge (LRO), get, list,
 * delete. A PUT replaces the group's rules with those sent, as ARM does. A NIC holds one by
 * `networkSecurityGroup.id` (network.ts); one a NIC holds cannot be deleted (Azure's
 * `InUseNetworkSecurityGroupCannotBeDeleted`, 400). Rules are kept and shown, not enforced.
 */
import { z } from 'zod';
import { ArmError, resourceNotFound } from './errors.ts';
import type { ArmReply, FakeNsg, FakeSecurityRule } from './model.ts';
import { parseBody, validName } from './wire.ts';
import { resourceKey as key, type World } from './world.ts';

const TYPE = 'Microsoft.Network/networkSecurityGroups';

const RuleBody = z.object({
  name: z.string().min(1).max(80),
  properties: z.looseObject({
    description: z.string().max(140).optional(),
    protocol: z.enum(['Tcp', 'Udp', 'Icmp', 'Esp', 'Ah', '*']),
    access: z.enum(['Allow', 'Deny']),
    direction: z.enum(['Inbound', 'Outbound']),
    priority: z.number().int(),
    sourceAddressPrefix: z.string().optional(),
    sourceAddressPrefixes: z.array(z.string()).optional(),
    sourcePortRange: z.string().optional(),
    sourcePortRanges: z.array(z.string()).optional(),
    destinationAddressPrefix: z.string().optional(),
    destinationAddressPrefixes: z.array(z.string()).optional(),
    destinationPortRange: z.string().optional(),
    destinationPortRanges: z.array(z.string()).optional(),
  }),
});

const NsgBody = z.object({
  location: z.string(),
  tags: z.record(z.string(), z.string()).optional(),
  properties: z.looseObject({ securityRules: z.array(RuleBody).optional() }).optional(),
});

/** Azure's own rules in every group: the VNet and the load balancer in, nothing else. */
const DEFAULT_RULES: readonly FakeSecurityRule[] = [
  ['AllowVnetInBound', 'Inbound', 65000, 'VirtualNetwork', 'VirtualNetwork', 'Allow'],
  ['AllowAzureLoadBalancerInBound', 'Inbound', 65001, 'AzureLoadBalancer', '*', 'Allow'],
  ['DenyAllInBound', 'Inbound', 65500, '*', '*', 'Deny'],
  ['AllowVnetOutBound', 'Outbound', 65000, 'VirtualNetwork', 'VirtualNetwork', 'Allow'],
  ['AllowInternetOutBound', 'Outbound', 65001, '*', 'Internet', 'Allow'],
  ['DenyAllOutBound', 'Outbound', 65500, '*', '*', 'Deny'],
].map(([name, direction, priority, source, destination, access]) => ({
  name: String(name),
  protocol: '*',
  access: access as 'Allow' | 'Deny',
  direction: direction as 'Inbound' | 'Outbound',
  priority: Number(priority),
  sourceAddressPrefixes: [String(source)],
  sourcePortRanges: ['*'],
  destinationAddressPrefixes: [String(destination)],
  destinationPortRanges: ['*'],
}));

function ruleView(nsgId: string, kind: string, r: FakeSecurityRule, state: string): unknown {
  const one = (list: string[], single: string, plural: string): Record<string, unknown> =>
    list.length === 1 ? { [single]: list[0] } : { [plural]: list };
  return {
    id: `${nsgId}/${kind}/${r.name}`,
    name: r.name,
    type: `${TYPE}/${kind}`,
    properties: {
      provisioningState: state,
      ...(r.description === undefined ? {} : { description: r.description }),
      protocol: r.protocol,
      access: r.access,
      direction: r.direction,
      priority: r.priority,
      ...one(r.sourceAddressPrefixes, 'sourceAddressPrefix', 'sourceAddressPrefixes'),
      ...one(r.sourcePortRanges, 'sourcePortRange', 'sourcePortRanges'),
      ...one(
        r.destinationAddressPrefixes,
        'destinationAddressPrefix',
        'destinationAddressPrefixes',
      ),
      ...one(r.destinationPortRanges, 'destinationPortRange', 'destinationPortRanges'),
    },
  };
}

/** The NICs holding the group. */
export function nicsOf(world: World, nsg: FakeNsg): string[] {
  return [...world.nics.values()]
    .filter((n) => n.networkSecurityGroupName?.toLowerCase() === nsg.name.toLowerCase())
    .map((n) => n.id);
}

export function nsgView(world: World, nsg: FakeNsg): unknown {
  const nics = nicsOf(world, nsg);
  return {
    id: nsg.id,
    name: nsg.name,
    type: TYPE,
    location: world.location,
    tags: nsg.tags,
    etag: `W/"${nsg.resourceGuid}-${nsg.generation}"`,
    properties: {
      provisioningState: nsg.provisioningState,
      resourceGuid: nsg.resourceGuid,
      securityRules: nsg.rules.map((r) =>
        ruleView(nsg.id, 'securityRules', r, nsg.provisioningState),
      ),
      defaultSecurityRules: DEFAULT_RULES.map((r) =>
        ruleView(nsg.id, 'defaultSecurityRules', r, 'Succeeded'),
      ),
      ...(nics.length === 0 ? {} : { networkInterfaces: nics.map((id) => ({ id })) }),
    },
  };
}

function toRule(r: z.infer<typeof RuleBody>): FakeSecurityRule {
  const p = r.properties;
  if (p.priority < 100 || p.priority > 4096) {
    throw new ArmError(
      400,
      'SecurityRuleInvalidPriority',
      `Security rule ${r.name} has invalid Priority. Value provided: ${p.priority}. Allowed range 100-4096.`,
    );
  }
  const list = (one: string | undefined, many: string[] | undefined, what: string): string[] => {
    if (one !== undefined && many !== undefined && many.length > 0) {
      throw new ArmError(
        400,
        'SecurityRuleParameterContainsUnsupportedValue',
        `Security rule ${r.name} gives both ${what} and ${what}s.`,
      );
    }
    return many ?? (one === undefined ? [] : [one]);
  };
  return {
    name: r.name,
    ...(p.description === undefined ? {} : { description: p.description }),
    protocol: p.protocol,
    access: p.access,
    direction: p.direction,
    priority: p.priority,
    sourceAddressPrefixes: list(p.sourceAddressPrefix, p.sourceAddressPrefixes, 'source prefix'),
    sourcePortRanges: list(p.sourcePortRange, p.sourcePortRanges, 'source port range'),
    destinationAddressPrefixes: list(
      p.destinationAddressPrefix,
      p.destinationAddressPrefixes,
      'destination prefix',
    ),
    destinationPortRanges: list(
      p.destinationPortRange,
      p.destinationPortRanges,
      'destination port range',
    ),
  };
}

function rulesOf(body: z.infer<typeof NsgBody>): FakeSecurityRule[] {
  const rules = (body.properties?.securityRules ?? []).map(toRule);
  const seen = new Map<string, string>();
  for (const r of rules) {
    const slot = `${r.direction}/${r.priority}`;
    const other = seen.get(slot);
    if (other !== undefined) {
      throw new ArmError(
        400,
        'SecurityRuleConflict',
        `Security rule ${r.name} conflicts with rule ${other}. Rules cannot have the same Priority and Direction.`,
      );
    }
    seen.set(slot, r.name);
  }
  return rules;
}

export function putNsg(world: World, body: unknown, name: string): ArmReply {
  validName(name, 80);
  const b = parseBody(NsgBody, body);
  const rules = rulesOf(b);
  const existing = world.nsgs.get(key(name));
  if (existing !== undefined) {
    if (existing.provisioningState === 'Deleting') {
      throw new ArmError(
        409,
        'AnotherOperationInProgress',
        `Network security group '${name}' is being deleted.`,
      );
    }
    // A convergence: the rules and tags are now what was sent.
    existing.rules = rules;
    existing.tags = { ...(b.tags ?? {}) };
    existing.generation += 1;
    return { status: 200, body: nsgView(world, existing) };
  }
  const nsg: FakeNsg = {
    name,
    id: world.resourceId('Microsoft.Network', 'networkSecurityGroups', name),
    tags: { ...(b.tags ?? {}) },
    rules,
    resourceGuid: world.rng.uuid(),
    generation: 1,
    provisioningState: 'Updating',
    createdAt: world.iso(),
    operation: null,
  };
  world.nsgs.set(key(name), nsg);
  nsg.operation = world.startOperation('Microsoft.Network', () => {
    nsg.provisioningState = 'Succeeded';
    return undefined;
  });
  return {
    status: 201,
    body: nsgView(world, nsg),
    headers: { 'Azure-AsyncOperation': world.operationUrl(nsg.operation) },
  };
}

export function getNsg(world: World, name: string): ArmReply {
  const nsg = world.nsgs.get(key(name));
  if (nsg === undefined) throw resourceNotFound(TYPE, name, world.resourceGroup);
  if (nsg.operation !== null) world.tick(nsg.operation);
  return { status: 200, body: nsgView(world, nsg) };
}

export function listNsgs(world: World): ArmReply {
  return { status: 200, body: { value: [...world.nsgs.values()].map((n) => nsgView(world, n)) } };
}

export function deleteNsg(world: World, name: string): ArmReply {
  const nsg = world.nsgs.get(key(name));
  if (nsg === undefined) return { status: 204 };
  const holders = nicsOf(world, nsg);
  if (holders.length > 0) {
    throw new ArmError(
      400,
      'InUseNetworkSecurityGroupCannotBeDeleted',
      `Network security group ${nsg.id} cannot be deleted because it is in use by the following ` +
        `resources: ${holders.join(', ')}. In order to delete the Network security group, ` +
        'remove the association with the resource(s).',
    );
  }
  if (nsg.provisioningState !== 'Deleting') {
    nsg.provisioningState = 'Deleting';
    nsg.operation = world.startOperation('Microsoft.Network', () => {
      world.nsgs.delete(key(name));
      return undefined;
    });
  }
  const url = nsg.operation === null ? '' : world.operationUrl(nsg.operation);
  return { status: 202, headers: { 'Azure-AsyncOperation': url, Location: url } };
}
