/**
 * Carries out the allocator's Azure effects (`respawn.out.azure.<region>`) through the
 * VmProvider port and reports each result back as an allocator command. Handlers never call
 * Azure; this runner is where the slow, failing, long-running work happens.
 *
 * Effects of one session run in order (a delete waits for that VM's create; the next
 * candidate's create waits for the failed VM's delete); different sessions run side by side. Each result is published with a Nats-Msg-Id derived from the effect's
 * own, so an effect redelivered after a crash reports once; the provider calls themselves are
 * idempotent (names derive from the session), so doing one twice converges on one VM.
 */
import {
  AckPolicy,
  DeliverPolicy,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
} from '@nats-io/jetstream';
import { headers as natsHeaders, nanos } from '@nats-io/transport-node';
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
  HeaderNames,
  SpanKind,
  Streams,
  TraceAttributes,
  activeSpan,
  agentToken,
  cmdSubject,
  dlqSubject,
  encodeAgentBootstrap,
  extractTrace,
  failSpan,
  messageAttributes,
  messageSet,
  outAzureSubject,
  subjectTemplate,
  traceIdOf,
  tracedPublish,
  withSpan,
  type MessageOf,
} from '../../contracts/index.ts';
import { ProviderError, type AdminCredentials, type VmProvider } from './azure/index.ts';
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
}

export interface AzureEffectsRunner {
  start(): Promise<void>;
  stop(): Promise<void>;
}

const effects = messageSet([
  AzureCreateVm,
  AzureDeleteVm,
  AzureRefresh,
  AzureArchiveDisk,
  AzureReconcileDisks,
]);
type Effect =
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

export function createAzureEffectsRunner(deps: {
  js: JetStreamClient;
  jsm: JetStreamManager;
  provider: VmProvider;
  config: AzureEffectsConfig;
  log: Logger;
  /** The players' recorded disks, for disk reconciliation; without it rounds are skipped. */
  diskRecords?: DiskRecordSource;
}): AzureEffectsRunner {
  const { js, jsm, provider, config } = deps;
  const log = deps.log.child({ component: 'azure-effects', region: config.region });
  const durable = `azure-${config.region}`;
  const perVm = new Map<string, Promise<void>>();
  let messages: ConsumerMessages | undefined;
  let inFlight = 0;
  let drained: (() => void) | undefined;

  const allocSubject = (verb: string): string => cmdSubject(ActorKinds.alloc, config.region, verb);

  async function report(effectId: string, subject: string, data: Uint8Array): Promise<void> {
    // Under the effect's consumer span (active): the result continues the trace.
    const h = natsHeaders();
    const msgID = `res-${effectId}`;
    await tracedPublish(subject, h, () => js.publish(subject, data, { msgID, headers: h }), {
      msgId: msgID,
    });
  }

  async function run(e: Effect, effectId: string): Promise<void> {
    switch (e.type) {
      case AzureCreateVm.type: {
        const tags = {
          player: e.playerId,
          session: e.sessionId,
          tier: e.priority === 'spot' ? 'spot' : 'on_demand',
          purpose: 'respawn-session',
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
          await provider.ensureNic({ name: e.nicName, tags });
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
            allocSubject('create_result'),
            AllocCreateResult.encode({ sessionId: e.sessionId, vmName: e.vmName, ok: true }),
          );
        } catch (err) {
          log.warn(
            { vmName: e.vmName, err: errorData(err), traceId: traceIdOf(activeSpan()) },
            'create failed',
          );
          await report(
            effectId,
            allocSubject('create_result'),
            AllocCreateResult.encode({
              sessionId: e.sessionId,
              vmName: e.vmName,
              ok: false,
              error: errorData(err),
            }),
          );
        }
        return;
      }
      case AzureDeleteVm.type: {
        try {
          await provider.deleteVm(e.vmName, { nicName: e.nicName });
          await report(
            effectId,
            allocSubject('delete_result'),
            AllocDeleteResult.encode({ sessionId: e.sessionId, vmName: e.vmName, ok: true }),
          );
        } catch (err) {
          const data = errorData(err);
          const ok = data.kind === 'not_found';
          await report(
            effectId,
            allocSubject('delete_result'),
            AllocDeleteResult.encode({
              sessionId: e.sessionId,
              vmName: e.vmName,
              ok,
              ...(ok ? {} : { error: data }),
            }),
          );
        }
        return;
      }
      case AzureArchiveDisk.type: {
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
        const tags = {
          player: e.playerId,
          session: 'none',
          tier: 'spot',
          purpose: 'respawn-disk-snapshot',
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
        return;
      }
      case AzureReconcileDisks.type: {
        const publish = (id: string, subject: string, data: Uint8Array) =>
          report(`${effectId}-${id}`, subject, data);
        const { region } = config;
        return runDiskRound({ provider, records: deps.diskRecords, region, log, publish }, e);
      }
      case AzureRefresh.type: {
        const at = new Date().toISOString();
        if (e.usage) {
          const usages = await provider.getUsage(config.quotaNames);
          await report(
            `${effectId}-usage`,
            allocSubject('usage'),
            AllocUsage.encode({ at, usages }),
          );
        }
        if (e.inventory) {
          const vms = await provider.listVms({ purpose: 'respawn-session' });
          await report(
            `${effectId}-inventory`,
            allocSubject('inventory'),
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
        return;
      }
    }
  }

  async function handle(m: JsMsg): Promise<void> {
    const effectId = m.headers?.get(HeaderNames.msgId) || `seq-${m.seq}`;
    let e: Effect;
    try {
      e = effects.decode(m.data);
    } catch (err) {
      const h = m.headers;
      await js.publish(dlqSubject(ActorKinds.alloc, 'invalid_payload'), m.data, {
        msgID: `dlq-${effectId}`,
        ...(h === undefined ? {} : { headers: h }),
      });
      log.warn({ subject: m.subject, effectId, err }, 'invalid Azure effect dead-lettered');
      m.term();
      return;
    }
    // A player's VMs share the player's disk: a failed VM must be deleted (releasing the
    // disk) before the next candidate's create can attach it, and an archive must not race
    // a create: a player's effects run in order. Different players run side by side.
    const key =
      e.type === AzureRefresh.type
        ? '(refresh)'
        : e.type === AzureReconcileDisks.type
          ? '(disks)'
          : e.type === AzureDeleteVm.type
            ? (e.playerId ?? e.sessionId)
            : e.playerId;
    const previous = perVm.get(key) ?? Promise.resolve();
    // The consumer span starts when the effect's turn comes; the Azure calls are its children.
    const span = {
      kind: SpanKind.CONSUMER,
      parent: extractTrace(m.headers),
      attributes: messageAttributes(
        'process',
        {
          subject: m.subject,
          msgId: effectId,
          stream: m.info.stream,
          streamSeq: m.seq,
          deliveryCount: m.info.deliveryCount,
        },
        {
          [TraceAttributes.region]: config.region,
          ...('playerId' in e && e.playerId !== undefined
            ? { [TraceAttributes.player]: e.playerId }
            : {}),
          ...('sessionId' in e ? { [TraceAttributes.session]: e.sessionId } : {}),
          ...('vmName' in e ? { [TraceAttributes.vmName]: e.vmName } : {}),
        },
      ),
    };
    const mine = previous.then(() =>
      withSpan(`process ${subjectTemplate(m.subject)}`, span, async (s) => {
        const timer = setInterval(() => m.working(), 10_000);
        try {
          await run(e, effectId);
          m.ack();
        } catch (err) {
          failSpan(s, err);
          log.warn({ err, effectId, traceId: traceIdOf(s) }, 'effect failed; will be retried');
          m.nak(5_000);
        } finally {
          clearInterval(timer);
        }
      }),
    );
    perVm.set(key, mine);
    await mine;
    if (perVm.get(key) === mine) perVm.delete(key);
  }

  return {
    async start() {
      try {
        await jsm.consumers.info(Streams.out.name, durable);
      } catch {
        await jsm.consumers.add(Streams.out.name, {
          durable_name: durable,
          filter_subject: outAzureSubject(config.region),
          ack_policy: AckPolicy.Explicit,
          deliver_policy: DeliverPolicy.All,
          ack_wait: nanos(60_000),
          max_ack_pending: config.concurrency,
          max_deliver: -1,
        });
      }
      const c = await js.consumers.get(Streams.out.name, durable);
      messages = await c.consume({
        max_messages: config.concurrency,
        callback: (m) => {
          inFlight++;
          void handle(m).finally(() => {
            inFlight--;
            if (inFlight === 0) drained?.();
          });
        },
      });
      log.info({ durable }, 'Azure effects runner started');
    },
    async stop() {
      await messages?.close();
      if (inFlight > 0) await new Promise<void>((r) => (drained = r));
    },
  };
}
