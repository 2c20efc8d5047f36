/**
 * One disk reconciliation round, carried out by the Azure effects runner: lists the region's
 * Respawn-tagged player disks and snapshots, reads the players' recorded disk state from
 * PostgreSQL (the session actor's rows in `rt_state`, read only: only the session actor writes
 * its state), applies the grace period (disk-reconcile.ts), and acts on what two rounds agree
 * on: a repair or an adoption goes to the player's session actor as a command; a disk nobody
 * owns is reported (log and event), never deleted. Every message gets a Nats-Msg-Id derived
 * from the round's effect, so a round redelivered after a crash repeats nothing.
 */
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import { z } from 'zod';
import {
  ActorKinds,
  AllocDiskDecided,
  AllocDiskRound,
  AllocVerbs,
  DiskDecisions,
  DiskFindings,
  SessionDiskFound,
  SessionDiskMissing,
  SessionVerbs,
  cmdSubject,
  evtSubject,
  type AzureReconcileDisks,
  type DiskDecision,
  type MessageOf,
} from '../../contracts/index.ts';
import type { VmProvider } from './azure/index.ts';
import { judge, observeDisks, type DiskRecord, type Observation } from './disk-reconcile.ts';

/** Where the players' recorded disk state comes from. */
export interface DiskRecordSource {
  /**
   * The records of every player whose disk (or archive) is recorded in `region`, and of the
   * given players (the owners Azure's tags name), by player id.
   */
  read(region: string, players: readonly string[]): Promise<Map<string, DiskRecord>>;
}

const Row = z.object({
  key: z.string(),
  phase: z.string(),
  disk_state: z.enum(['none', 'live', 'archived']),
  region: z.string().nullable(),
  seq: z.coerce.number().int().min(0),
});

/** The session actor's rows, the few fields the reconciler compares. */
export function createDiskRecords(knex: Knex, log: Logger): DiskRecordSource {
  const query = () =>
    knex('rt_state')
      .select(
        'key',
        knex.raw("state->>'phase' as phase"),
        knex.raw("coalesce(state->>'diskState', 'none') as disk_state"),
        knex.raw("state->>'region' as region"),
        knex.raw("coalesce(state->>'seq', '0') as seq"),
      )
      .where({ actor: ActorKinds.session });
  return {
    async read(region, players) {
      const rows: unknown[] = await query()
        .whereRaw("state->>'diskState' in ('live', 'archived')")
        .whereRaw("state->>'region' = ?", [region]);
      for (let i = 0; i < players.length; i += 1_000) {
        rows.push(...((await query().whereIn('key', players.slice(i, i + 1_000))) as unknown[]));
      }
      const out = new Map<string, DiskRecord>();
      for (const raw of rows) {
        const r = Row.safeParse(raw);
        if (!r.success) {
          log.warn({ issues: r.error.issues.slice(0, 3) }, 'session record unreadable; skipped');
          continue;
        }
        const { key, phase, disk_state, region: recorded, seq } = r.data;
        out.set(key, {
          playerId: key,
          phase,
          diskState: disk_state,
          region: recorded ?? undefined,
          seq,
        });
      }
      return out;
    },
  };
}

/** Publishes with a Nats-Msg-Id derived from the round's effect and `id`. */
export type RoundPublish = (id: string, subject: string, data: Uint8Array) => Promise<void>;

const DECISION: Record<Observation['finding'], DiskDecision> = {
  [DiskFindings.missing]: DiskDecisions.missing,
  [DiskFindings.unrecorded]: DiskDecisions.adopted,
  [DiskFindings.unowned]: DiskDecisions.unowned,
};

export async function runDiskRound(
  deps: {
    provider: VmProvider;
    /** Absent (a runner given no database): the round is skipped, with a warning. */
    records: DiskRecordSource | undefined;
    region: string;
    log: Logger;
    publish: RoundPublish;
  },
  e: MessageOf<typeof AzureReconcileDisks>,
): Promise<void> {
  const { provider, records: source, region, log, publish } = deps;
  if (source === undefined) {
    log.warn('disk reconciliation round skipped: this runner was given no session records');
    return;
  }
  const [disks, snapshots] = await Promise.all([
    provider.listDisks({ purpose: 'respawn-disk' }),
    provider.listSnapshots(),
  ]);
  const owners = [...new Set(disks.flatMap((d) => (d.tags.player ? [d.tags.player] : [])))];
  const records = await source.read(region, owners);
  const observations = observeDisks({
    region,
    disks,
    snapshots: snapshots
      .filter((s) => s.provisioningState.toLowerCase() !== 'deleting')
      .map((s) => s.name),
    records,
  });
  const verdict = judge(observations, e.suspects, new Date(e.at), e.graceMs);

  for (const o of verdict.act) {
    const decision = DECISION[o.finding];
    const fields = { decision, diskName: o.diskName, playerId: o.playerId, detail: o.detail };
    if (o.finding !== DiskFindings.unowned && o.playerId !== undefined && o.seq !== undefined) {
      const missing = o.finding === DiskFindings.missing;
      await publish(
        `${decision}-${o.playerId}`,
        cmdSubject(
          ActorKinds.session,
          o.playerId,
          missing ? SessionVerbs.diskMissing : SessionVerbs.diskFound,
        ),
        missing
          ? SessionDiskMissing.encode({
              diskName: o.diskName,
              seq: o.seq,
              ...(o.snapshotName === undefined ? {} : { snapshotName: o.snapshotName }),
            })
          : SessionDiskFound.encode({
              diskName: o.diskName,
              seq: o.seq,
              region,
              ...(o.zone === undefined ? {} : { zone: o.zone }),
            }),
      );
    }
    await publish(
      `${decision}-evt-${o.diskName}`,
      evtSubject(ActorKinds.alloc, region, decision),
      AllocDiskDecided.encode({
        decision,
        diskName: o.diskName,
        ...(o.playerId === undefined ? {} : { playerId: o.playerId }),
        detail: o.detail,
        at: e.at,
      }),
    );
    // A disk nobody owns costs money and needs a person; a lost disk is lost player data.
    if (o.finding === DiskFindings.unowned) {
      log.warn(fields, `disk unowned: ${o.diskName} (${o.detail}); reported, not deleted`);
    } else if (o.finding === DiskFindings.missing && o.snapshotName === undefined) {
      log.warn(fields, `disk lost: ${o.diskName} (${o.detail}); session and player told`);
    } else {
      log.info(fields, `${decision}: ${o.diskName} (${o.detail}); session told`);
    }
  }
  for (const o of verdict.waiting) {
    log.info(
      { finding: o.finding, diskName: o.diskName, playerId: o.playerId, detail: o.detail },
      `disk ${o.finding}: ${o.diskName} (${o.detail}); acted on if a round ${e.graceMs / 1_000} s later agrees`,
    );
  }

  const by = (f: Observation['finding']) => observations.filter((o) => o.finding === f).length;
  const counts = {
    disks: disks.length,
    snapshots: snapshots.length,
    records: records.size,
    missing: by(DiskFindings.missing),
    unrecorded: by(DiskFindings.unrecorded),
    unowned: by(DiskFindings.unowned),
    acted: verdict.act.length,
    waiting: verdict.waiting.length,
  };
  await publish(
    'round',
    cmdSubject(ActorKinds.alloc, region, AllocVerbs.diskRound),
    AllocDiskRound.encode({ at: e.at, suspects: verdict.suspects, counts }),
  );
  log.info(
    { ...counts, ...(verdict.dropped > 0 ? { notRemembered: verdict.dropped } : {}) },
    'disk reconciliation round',
  );
}
