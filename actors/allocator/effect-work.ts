/**
 * What each Azure effect does, through the VmProvider port, and the result it reports back
 * (effects.ts consumes the effects, orders them per player and traces them). A result is
 * published with a Nats-Msg-Id derived from the effect's, so an effect done twice (a
 * redelivery after a crash) reports once; the provider calls are idempotent (names derive
 * from the session), so doing one twice converges on one VM.
 */
import type { Logger } from 'pino';
import {
  ActorKinds,
  AllocCreateResult,
  AllocDeleteResult,
  AllocInventory,
  AllocUsage,
  AzureArchiveDisk,
  AzureCreateVm,
  AzureDeleteVm,
  AzureReconcileDisks,
  AzureRefresh,
  SessionDiskArchived,
  activeSpan,
  agentToken,
  cmdSubject,
  encodeAgentBootstrap,
  messageSet,
  traceIdOf,
  type MessageOf,
} from '../../contracts/index.ts';
import {
  ProviderError,
  ProviderErrorKinds,
  type AdminCredentials,
  type StreamingSecurityGroup,
  type VmProvider,
} from './azure/index.ts';
import { runDiskRound, type DiskRecordSource } from './disk-round.ts';

export interface AzureEffectsConfig {
  region: string;
  /** Image a player's disk is created from on first play (an image resource id). */
  diskImageId: string | undefined;
  diskSizeGb: number;
  vmImage: string;
  admin: AdminCredentials;
  /** Usage names reported to the allocator (Spot and the family's On-Demand vCPUs). */
  quotaNames: readonly string[];
  /** Effects in flight at once. */
  concurrency: number;
  /**
   * The VM agent's bootstrap, given to each session VM as userData: the gateway's report URL
   * and the master secret its per-VM token derives from. Absent: VMs get no userData.
   */
  agent?: { reportUrl: string; masterSecret: string };
  /**
   * Whether each session VM gets a static public IPv4 (`<vmName>-pip`) on its NIC, the address
   * its agent reports to the player. Default true; false for an operator whose players reach
   * VMs through a relay or VPN (the agent then reports the private IP). With it, the NIC also
   * gets the region's streaming network security group (azure/streaming-nsg.ts); without it,
   * no NSG is made or attached.
   */
  publicIp?: boolean;
}

/** The session VM's public IP, derived from the VM name like its NIC's, so a retry is the same. */
export const publicIpNameOf = (vmName: string): string => `${vmName}-pip`;

export const effects = messageSet([
  AzureCreateVm,
  AzureDeleteVm,
  AzureRefresh,
  AzureArchiveDisk,
  AzureReconcileDisks,
]);
export type Effect =
  | MessageOf<typeof AzureArchiveDisk>
  | MessageOf<typeof AzureReconcileDisks>
  | MessageOf<typeof AzureCreateVm>
  | MessageOf<typeof AzureDeleteVm>
  | MessageOf<typeof AzureRefresh>;

function errorData(err: unknown): {
  kind: ProviderError['kind'];
  code: string;
  message: string;
  retryAfterMs?: number;
} {
  if (err instanceof ProviderError) {
    return {
      kind: err.kind,
      code: err.code.slice(0, 128),
      message: err.message.slice(0, 1000),
      ...(err.retryAfterMs === null ? {} : { retryAfterMs: err.retryAfterMs }),
    };
  }
  return {
    kind: 'transient',
    code: 'Unexpected',
    message: (err instanceof Error ? err.message : String(err)).slice(0, 1000),
  };
}

/** What an effect is done with. */
export interface EffectContext {
  provider: VmProvider;
  config: AzureEffectsConfig;
  log: Logger;
  /** The players' recorded disks, for disk reconciliation; without it rounds are skipped. */
  diskRecords: DiskRecordSource | undefined;
  /** The region's streaming NSG, converged once and put on NICs that have a public IP. */
  streamingNsg: StreamingSecurityGroup;
  /** Publishes a result with Nats-Msg-Id `res-<effectId>`. */
  report: (effectId: string, subject: string, data: Uint8Array) => Promise<void>;
}

const allocSubject = (ctx: EffectContext, verb: string): string =>
  cmdSubject(ActorKinds.alloc, ctx.config.region, verb);

/** Does one effect and reports its result; throws only for a failure worth retrying. */
export async function runEffect(ctx: EffectContext, e: Effect, effectId: string): Promise<void> {
  switch (e.type) {
    case AzureCreateVm.type:
      return createVm(ctx, e, effectId);
    case AzureDeleteVm.type:
      return deleteVm(ctx, e, effectId);
    case AzureArchiveDisk.type:
      return archiveDisk(ctx, e, effectId);
    case AzureReconcileDisks.type:
      return reconcileDisks(ctx, e, effectId);
    case AzureRefresh.type:
      return refresh(ctx, e, effectId);
  }
}

/**
 * The player's disk (made, or restored from its snapshot), the streaming NSG (if not yet
 * converged), public IP and NIC, then the VM.
 */
async function createVm(
  ctx: EffectContext,
  e: MessageOf<typeof AzureCreateVm>,
  effectId: string,
): Promise<void> {
  const { provider, config, log, report } = ctx;
  const tags = {
    player: e.playerId,
    session: e.sessionId,
    tier: e.priority === 'spot' ? 'spot' : 'on_demand',
    purpose: 'respawn-session',
    region: config.region,
  } as const;
  try {
    const disk = await provider.getDisk(e.diskName);
    const snapshot = disk === null ? await provider.getSnapshot(`snap-${e.diskName}`) : null;
    if (disk === null && snapshot !== null) {
      // The player's disk was archived while unused: bring it back first.
      await provider.createDiskFromSnapshot({
        name: e.diskName,
        snapshotName: snapshot.name,
        ...(e.zone === undefined ? {} : { zone: e.zone }),
        tags: { ...tags, purpose: 'respawn-disk' },
      });
      // The disk holds the data again; the snapshot would only cost storage and go stale.
      await provider.deleteSnapshot(snapshot.name);
    } else if (disk === null) {
      await provider.createDisk({
        name: e.diskName,
        sizeGb: config.diskSizeGb,
        ...(e.zone === undefined ? {} : { zone: e.zone }),
        source:
          config.diskImageId === undefined
            ? { kind: 'empty' }
            : { kind: 'image', imageId: config.diskImageId },
        tags: { ...tags, purpose: 'respawn-disk' },
      });
    }
    // A public IP lets nothing in without an NSG allowing it; a relay or VPN needs neither.
    const securityGroupName = config.publicIp === false ? null : await ctx.streamingNsg.ensure();
    try {
      await provider.ensureNic({
        name: e.nicName,
        ...(securityGroupName === null
          ? {}
          : { publicIpName: publicIpNameOf(e.vmName), securityGroupName }),
        tags,
      });
    } catch (err) {
      // The group may have been removed behind our back: the retried create PUTs it again.
      if (err instanceof ProviderError && err.kind === ProviderErrorKinds.notFound)
        ctx.streamingNsg.forget();
      throw err;
    }
    await provider.createOrUpdateVm({
      name: e.vmName,
      nicName: e.nicName,
      size: e.size,
      tier: tags.tier,
      ...(e.zone === undefined ? {} : { zone: e.zone }),
      dataDiskName: e.diskName,
      image: config.vmImage,
      admin: config.admin,
      ...(config.agent === undefined
        ? {}
        : {
            userData: encodeAgentBootstrap({
              reportUrl: config.agent.reportUrl,
              vmName: e.vmName,
              sessionId: e.sessionId,
              playerId: e.playerId,
              token: agentToken(config.agent.masterSecret, e.vmName),
            }),
          }),
      tags,
    });
    await report(
      effectId,
      allocSubject(ctx, 'create_result'),
      AllocCreateResult.encode({ sessionId: e.sessionId, vmName: e.vmName, ok: true }),
    );
  } catch (err) {
    log.warn(
      { vmName: e.vmName, err: errorData(err), traceId: traceIdOf(activeSpan()) },
      'create failed',
    );
    await report(
      effectId,
      allocSubject(ctx, 'create_result'),
      AllocCreateResult.encode({
        sessionId: e.sessionId,
        vmName: e.vmName,
        ok: false,
        error: errorData(err),
      }),
    );
  }
}

async function deleteVm(
  ctx: EffectContext,
  e: MessageOf<typeof AzureDeleteVm>,
  effectId: string,
): Promise<void> {
  const { provider, report } = ctx;
  try {
    // The public IP goes too whatever the setting is now: the VM may have been made with one.
    await provider.deleteVm(e.vmName, {
      nicName: e.nicName,
      publicIpName: publicIpNameOf(e.vmName),
    });
    await report(
      effectId,
      allocSubject(ctx, 'delete_result'),
      AllocDeleteResult.encode({ sessionId: e.sessionId, vmName: e.vmName, ok: true }),
    );
  } catch (err) {
    const data = errorData(err);
    const ok = data.kind === 'not_found';
    await report(
      effectId,
      allocSubject(ctx, 'delete_result'),
      AllocDeleteResult.encode({
        sessionId: e.sessionId,
        vmName: e.vmName,
        ok,
        ...(ok ? {} : { error: data }),
      }),
    );
  }
}

/** An unused disk: snapshotted, then deleted; the session actor is told either way. */
async function archiveDisk(
  ctx: EffectContext,
  e: MessageOf<typeof AzureArchiveDisk>,
  effectId: string,
): Promise<void> {
  const { provider, report } = ctx;
  const to = cmdSubject(ActorKinds.session, e.playerId, 'disk_archived');
  const base = { diskName: e.diskName, snapshotName: e.snapshotName };
  const disk = await provider.getDisk(e.diskName);
  if (disk === null) {
    const ok = (await provider.getSnapshot(e.snapshotName)) !== null;
    await report(
      effectId,
      to,
      SessionDiskArchived.encode({ ...base, ok, ...(ok ? {} : { reason: 'no disk' }) }),
    );
    return;
  }
  if (disk.attachedToVm !== null) {
    // The player came back before the clean-up ran: the disk stays.
    await report(
      effectId,
      to,
      SessionDiskArchived.encode({ ...base, ok: false, reason: 'in use' }),
    );
    return;
  }
  // A snapshot belongs to the player, not to a session or a tier.
  const tags = {
    player: e.playerId,
    purpose: 'respawn-disk-snapshot',
    region: ctx.config.region,
  } as const;
  // A snapshot of that name from an earlier archive would be kept as it is by the PUT
  // (same name, same source disk name: Azure treats it as an update), and deleting the
  // disk would then lose everything since: remove it first. A crash in between leaves
  // the disk, and the retried effect snapshots it.
  if ((await provider.getSnapshot(e.snapshotName)) !== null) {
    await provider.deleteSnapshot(e.snapshotName);
  }
  await provider.snapshotDisk({ name: e.snapshotName, diskName: e.diskName, tags });
  await provider.deleteDisk(e.diskName);
  await report(effectId, to, SessionDiskArchived.encode({ ...base, ok: true }));
}

async function reconcileDisks(
  ctx: EffectContext,
  e: MessageOf<typeof AzureReconcileDisks>,
  effectId: string,
): Promise<void> {
  const { provider, config, log, report } = ctx;
  const publish = (id: string, subject: string, data: Uint8Array) =>
    report(`${effectId}-${id}`, subject, data);
  const { region } = config;
  return runDiskRound({ provider, records: ctx.diskRecords, region, log, publish }, e);
}

/** Quota usage and the inventory of session VMs, for the allocator. */
async function refresh(
  ctx: EffectContext,
  e: MessageOf<typeof AzureRefresh>,
  effectId: string,
): Promise<void> {
  const { provider, config, report } = ctx;
  const at = new Date().toISOString();
  if (e.usage) {
    const usages = await provider.getUsage(config.quotaNames);
    await report(
      `${effectId}-usage`,
      allocSubject(ctx, 'usage'),
      AllocUsage.encode({ at, usages }),
    );
  }
  if (e.inventory) {
    const vms = await provider.listVms({ purpose: 'respawn-session' });
    await report(
      `${effectId}-inventory`,
      allocSubject(ctx, 'inventory'),
      AllocInventory.encode({
        at,
        vms: vms.map((v) => ({
          name: v.name,
          purpose: v.tags.purpose ?? 'unknown',
          ...(v.tags.session === undefined ? {} : { sessionId: v.tags.session }),
        })),
      }),
    );
  }
}
