/**
 * `npm run bench:allocation [-- --json FILE] [--players N] [--spot N] [--ondemand N] [--session-window N]`:
 * 2,000 players press start within one second (every fifth presses twice) against the real
 * runtime (private nats-server, fresh database, the session actors and the region's
 * allocator in this process), with Azure's quota reported as room for 500 Spot and 300
 * On-Demand VMs.
 *
 *  decisions_per_s   allocation decisions (`alloc.decided.v1` reserved or queued) per second
 *                    of wall time, first start published → last decision seen
 *  decide_p50/p99_ms a player's first start published → the allocator's decision about that
 *                    player's session (`respawn.alloc.<region>.evt.reserved|queued`)
 *  vms_created       `azure.create_vm.v1` effects published
 *  duplicate_vms     creates beyond one per session, or a VM name created twice (must be 0)
 *  quota_overrun     reserved cores beyond the reported limit, summed over quotas (must be 0)
 *  raw_js_publish_per_s  JetStream publishes/s to a scratch stream of the same server after the
 *                    run, 1,000 in flight (a raw limit measured in the same run); with the
 *                    messages the run stored per decision, the ceiling publishing alone sets
 *  cpu_ceiling_decisions_per_s  the decisions/s at which cpu_ms_per_decision fills every core
 *                    of this machine (os.availableParallelism): a limit from the same run
 *  cpu_ms_per_decision  CPU time of this process, its nats-server and PostgreSQL from the
 *                    first start to the last session told, per decision (not a target: on a
 *                    shared 2-core machine it is steadier than decisions/s, and says where to
 *                    look)
 *
 * Also printed (not in the JSON): the time until the player's session reported the
 * decision (`respawn.session.<player>.evt.provisioning|queued`), the allocator's messages'
 * time from receipt to settlement, and its batch transactions' time in all (its worker's
 * `respawn_actor_batch_seconds`): the allocator serializes every decision, so that time
 * against the run's says whether it was the bottleneck.
 */
import { writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { JetStreamClient, JetStreamManager } from '@nats-io/jetstream';
import { Registry } from 'prom-client';
import {
  ActorKinds,
  AllocDecided,
  AllocUsage,
  AzureCreateVm,
  SessionChanged,
  SessionStart,
  cmdSubject,
  createJsPublisher,
  Streams,
  ensureTopology,
  outAzureSubject,
  type ActorKind,
} from '../../contracts/index.ts';
import {
  createAllocatorActor,
  defaultAllocatorConfig,
  type AllocState,
} from '../../actors/allocator/index.ts';
import { createSessionActor, defaultSessionConfig } from '../../actors/session/index.ts';
import {
  createWorker,
  systemClock,
  type ActorDefinition,
  type Worker,
} from '../../actors/runtime/index.ts';
import { createRuntimeMetrics } from '../../actors/runtime/metrics.ts';
import { startRuntimeEnv } from '../support/runtime-env.ts';
import { cpuMeter } from './cpu.ts';
import { batchTotals } from './scrape.ts';

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    players: { type: 'string', default: '2000' },
    spot: { type: 'string', default: '500' },
    ondemand: { type: 'string', default: '300' },
    timeout: { type: 'string', default: '600' },
    /** The session kind's partition window (default: contracts' PARTITION_WINDOWS). */
    'session-window': { type: 'string' },
  },
});
const PLAYERS = Number(args.players);
const SPOT_VMS = Number(args.spot);
const ON_DEMAND_VMS = Number(args.ondemand);
const TIMEOUT_MS = Number(args.timeout) * 1_000;
const REGION = 'centralindia';
const CORES = 4;
const QUOTAS: Record<string, number> = {
  lowPriorityCores: SPOT_VMS * CORES,
  standardNCASv3_T4Family: ON_DEMAND_VMS * CORES,
};

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

const RAW_MESSAGES = 20_000;
const RAW_IN_FLIGHT = 1_000;
/** The name this process's CPU is reported under. */
const BENCH_PROCESS = 'bench process (session actors, allocator)';

/**
 * Raw limit, measured in the same run: JetStream publishes per second to a scratch stream of
 * the same server, RAW_IN_FLIGHT awaiting their acks at a time, with the same client library.
 */
async function rawPublishRate(jsm: JetStreamManager, js: JetStreamClient): Promise<number> {
  await jsm.streams.add({ name: 'BENCH_RAW', subjects: ['bench.raw.>'] });
  try {
    const payload = SessionStart.encode({ requestedBy: 'player' });
    const t = performance.now();
    for (let i = 0; i < RAW_MESSAGES; i += RAW_IN_FLIGHT) {
      const acks: Promise<unknown>[] = [];
      for (let j = i; j < Math.min(RAW_MESSAGES, i + RAW_IN_FLIGHT); j++)
        acks.push(js.publish(`bench.raw.k${j % 2_000}`, payload));
      await Promise.all(acks);
    }
    return RAW_MESSAGES / ((performance.now() - t) / 1_000);
  } finally {
    await jsm.streams.delete('BENCH_RAW');
  }
}

/** The events stream's own filter for one actor kind (`respawn.<kind>.*.evt.*`). */
function eventsOf(kind: ActorKind): string {
  const f = Streams.events.subjects.find((x) => x.split('.')[1] === kind);
  if (f === undefined) throw new Error(`no event subject for ${kind}`);
  return f;
}

const playerOf = (sessionId: string): string => sessionId.replace(/-\d+$/, '');

async function main(): Promise<void> {
  const env = await startRuntimeEnv();
  const workers: Worker[] = [];
  try {
    await ensureTopology(env.jsm, {
      consumersFor: [ActorKinds.session, ActorKinds.alloc],
      windows:
        args['session-window'] === undefined ? {} : { session: Number(args['session-window']) },
    });
    const allocTx: number[] = [];
    // The allocator worker's own metrics: how long its batch transactions took in all.
    const allocRegistry = new Registry();
    const common = { nc: env.nc, db: env.db, log: env.log, clock: systemClock };
    // One worker per kind, so the allocator's partition never waits behind session batches.
    workers.push(
      createWorker({
        ...common,
        actors: [
          createSessionActor({
            ...defaultSessionConfig,
            requireAdmission: false,
          }) as unknown as ActorDefinition,
        ],
      }),
      createWorker({
        ...common,
        actors: [createAllocatorActor({ ...defaultAllocatorConfig }) as unknown as ActorDefinition],
        metrics: createRuntimeMetrics(allocRegistry),
        onSettled: (_p, _o, ms) => allocTx.push(ms),
      }),
    );
    for (const w of workers) await w.start();

    const firstPress = new Map<string, number>();
    const decidedAt = new Map<string, number>();
    const toldAt = new Map<string, number>();
    const creates: { sessionId: string; vmName: string }[] = [];
    const createIds = new Set<string>();
    let republished = 0;
    let lastDecision = 0;
    // When the session actors' requests reached the allocator's command stream (the mapped,
    // partitioned subjects): tells the session step's share of the time from the allocator's.
    const reqAt: number[] = [];
    const subs = [
      env.nc.subscribe('respawn.alloc.*.cmd.request.*', {
        callback: () => {
          reqAt.push(performance.now());
        },
      }),
      env.nc.subscribe(eventsOf(ActorKinds.alloc), {
        callback: (_e, m) => {
          const d = AllocDecided.decode(m.data);
          if ((d.decision !== 'reserved' && d.decision !== 'queued') || !d.sessionId) return;
          const player = playerOf(d.sessionId);
          if (!decidedAt.has(player)) decidedAt.set(player, performance.now());
          lastDecision = performance.now();
        },
      }),
      env.nc.subscribe(eventsOf(ActorKinds.session), {
        callback: (_e, m) => {
          const c = SessionChanged.decode(m.data);
          if (c.phase !== 'provisioning' && c.phase !== 'queued') return;
          const player = m.subject.split('.')[2]!;
          if (!toldAt.has(player)) toldAt.set(player, performance.now());
        },
      }),
      env.nc.subscribe(outAzureSubject(REGION), {
        callback: (_e, m) => {
          if (m.headers?.get('Respawn-Type') !== AzureCreateVm.type) return;
          // This subscription sees every publish; JetStream stores one per Nats-Msg-Id, and that
          // is what the effects runner reads. An outbox row published again (the sweeper
          // racing a slow publisher) is the same create, counted apart.
          const id = m.headers.get('Nats-Msg-Id');
          if (id !== '' && createIds.has(id)) {
            republished++;
            return;
          }
          createIds.add(id);
          const c = AzureCreateVm.decode(m.data);
          creates.push({ sessionId: c.sessionId, vmName: c.vmName });
        },
      }),
    ];
    await env.nc.flush();

    await env.js.publish(
      cmdSubject(ActorKinds.alloc, REGION, 'usage'),
      AllocUsage.encode({
        at: new Date().toISOString(),
        usages: Object.entries(QUOTAS).map(([name, limit]) => ({ name, current: 0, limit })),
      }),
    );
    out(`${PLAYERS} players press start (every fifth twice)…`);
    const cpu = cpuMeter({
      [BENCH_PROCESS]: () => process.pid,
      'nats-server': () => env.nats.pid,
    });
    // Presses go out as the gateway sends them in a deployment (the shared-inbox publisher,
    // contracts/js-publish.ts), not through nats.js's js.publish, whose request, timer and
    // Error per message would be charged to this process, where the actors run.
    const presses = createJsPublisher(env.nc);
    const allocBatchesBefore = batchTotals(await allocRegistry.metrics());
    const t0 = performance.now();
    const acks: Promise<unknown>[] = [];
    for (let i = 0; i < PLAYERS; i++) {
      const player = `p${i}`;
      const subject = cmdSubject(ActorKinds.session, player, 'start');
      for (let n = 0; n < (i % 5 === 0 ? 2 : 1); n++) {
        if (n === 0) firstPress.set(player, performance.now());
        acks.push(
          presses.publish(subject, SessionStart.encode({ requestedBy: 'player' }), {
            msgID: `press-${player}-${n}`,
          }),
        );
      }
    }
    await Promise.all(acks);
    presses.close();
    const publishMs = performance.now() - t0;
    out(`published ${acks.length} starts in ${publishMs.toFixed(0)} ms`);

    const deadline = Date.now() + TIMEOUT_MS;
    let lastReport = Date.now();
    while (decidedAt.size < PLAYERS && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 50));
      if (Date.now() - lastReport >= 5_000) {
        lastReport = Date.now();
        out(`  ${decidedAt.size} decided after ${((performance.now() - t0) / 1_000).toFixed(1)} s`);
      }
    }
    if (decidedAt.size < PLAYERS) out(`TIMED OUT: only ${decidedAt.size} of ${PLAYERS} decided`);
    // Let the last creates and session reports arrive.
    const settleDeadline = Date.now() + 10_000;
    while (toldAt.size < decidedAt.size && Date.now() < settleDeadline) {
      await new Promise((r) => setTimeout(r, 50));
    }
    const cpuUsed = cpu.sample();
    const allocBatchesAfter = batchTotals(await allocRegistry.metrics());
    const allocBatches = allocBatchesAfter.batches - allocBatchesBefore.batches;
    const allocBusyS = allocBatchesAfter.seconds - allocBatchesBefore.seconds;
    for (const s of subs) s.unsubscribe();
    // Every JetStream message the run stored (commands, events, effects), per decision, and
    // the same server's raw publish rate: together, the most decisions/s publishing alone allows.
    let stored = 0;
    for await (const si of env.jsm.streams.list()) stored += si.state.messages;
    const raw = await rawPublishRate(env.jsm, env.js);

    const latencies = (from: Map<string, number>): number[] =>
      [...from]
        .map(([p, t]) => t - (firstPress.get(p) ?? NaN))
        .filter((x) => Number.isFinite(x))
        .sort((a, b) => a - b);
    const decide = latencies(decidedAt);
    reqAt.sort((a, b) => a - b);
    const since = (t: number | undefined): string => ((t ?? NaN) - t0).toFixed(0);
    out(
      `requests reached the allocator: ${reqAt.length}, half by ${since(percentile(reqAt, 50))} ms, ` +
        `the last at ${since(reqAt.at(-1))} ms; last decision at ${since(lastDecision)} ms`,
    );
    const told = latencies(toldAt);
    const alloc = (
      await env.db.knex('rt_state').select('state').where({ actor: 'alloc', key: REGION })
    )[0] as { state: AllocState } | undefined;
    const reservations = Object.values(alloc?.state.reservations ?? {});
    let overrun = 0;
    for (const [name, limit] of Object.entries(QUOTAS)) {
      const used = reservations
        .filter((r) => r.quotaName === name)
        .reduce((n, r) => n + r.cores, 0);
      overrun += Math.max(0, used - limit);
    }
    const sessionsWithVm = new Set(creates.map((c) => c.sessionId)).size;
    const names = new Set(creates.map((c) => c.vmName)).size;
    const wallS = (lastDecision - t0) / 1_000;
    const sortedTx = [...allocTx].sort((a, b) => a - b);
    const cpuMsPerDecision = Number(
      (
        (Object.values(cpuUsed).reduce((a, v) => a + v, 0) * 1_000) /
        Math.max(1, decidedAt.size)
      ).toFixed(2),
    );
    const cores = availableParallelism();
    const figures = {
      decisions_per_s: Math.round((decidedAt.size / wallS) * 10) / 10,
      decide_p50_ms: Math.round(percentile(decide, 50)),
      decide_p99_ms: Math.round(percentile(decide, 99)),
      raw_js_publish_per_s: Math.round(raw),
      js_messages_per_decision: Number((stored / Math.max(1, decidedAt.size)).toFixed(2)),
      // Not a target: CPU of every process the decisions took, per decision. Steadier than
      // decisions/s on a shared machine, and the limit when all cores are busy.
      cpu_ms_per_decision: cpuMsPerDecision,
      /** The decisions/s at which this CPU per decision fills every core of the machine. */
      cpu_ceiling_decisions_per_s: Math.round((cores * 1_000) / Math.max(0.001, cpuMsPerDecision)),
      vms_created: creates.length,
      duplicate_vms: creates.length - Math.min(sessionsWithVm, names),
      quota_overrun: overrun,
    };
    const allocMsgs = allocTx.length;
    const rows: [string, string][] = [
      ['players (presses)', `${PLAYERS} (${acks.length}), published in ${publishMs.toFixed(0)} ms`],
      ['decisions', `${decidedAt.size} in ${wallS.toFixed(2)} s`],
      ['decisions_per_s', String(figures.decisions_per_s)],
      ['decide_p50_ms', String(figures.decide_p50_ms)],
      ['decide_p99_ms', String(figures.decide_p99_ms)],
      [
        'session told p50 / p99 ms',
        `${percentile(told, 50).toFixed(0)} / ${percentile(told, 99).toFixed(0)}`,
      ],
      ['vms_created', String(figures.vms_created)],
      ['duplicate_vms', String(figures.duplicate_vms)],
      ['creates published again (same Nats-Msg-Id)', String(republished)],
      ['quota_overrun', String(figures.quota_overrun)],
      [
        'reserved spot / on-demand / queued',
        `${reservations.filter((r) => r.quotaName === 'lowPriorityCores').length} / ${
          reservations.filter((r) => r.quotaName === 'standardNCASv3_T4Family').length
        } / ${alloc?.state.queue.length ?? 0}`,
      ],
      [
        'allocator messages, receipt → settled ms p50 / p99 / mean',
        `${allocMsgs}, ${percentile(sortedTx, 50).toFixed(1)} / ${percentile(sortedTx, 99).toFixed(1)} / ${(
          allocTx.reduce((a, b) => a + b, 0) / Math.max(1, allocMsgs)
        ).toFixed(1)}`,
      ],
      [
        // The allocator serializes every decision: its transactions' time in all against the
        // run's says whether it was the bottleneck.
        'allocator batches, their transactions in all',
        `${allocBatches}, ${(allocBusyS * 1_000).toFixed(0)} ms (${(
          decidedAt.size / Math.max(0.001, allocBusyS)
        ).toFixed(0)} decisions per second of allocator transaction)`,
      ],
      [
        'CPU ms per decision (first start → sessions told)',
        `${figures.cpu_ms_per_decision}: ${Object.entries(cpuUsed)
          .map(([k, v]) => `${k} ${((v * 1_000) / Math.max(1, decidedAt.size)).toFixed(2)}`)
          .join(', ')}`,
      ],
      [
        // What the CPU per decision allows on this machine with every core busy (queueing
        // sets the times long before that).
        `ceiling at this CPU cost, all ${cores} cores full`,
        `${figures.cpu_ceiling_decisions_per_s} decisions/s`,
      ],
      [
        'JetStream messages stored per decision',
        `${(stored / Math.max(1, decidedAt.size)).toFixed(1)} (${stored} in all streams)`,
      ],
      [
        `raw: JetStream publishes/s, ${RAW_IN_FLIGHT} in flight, same server`,
        `${raw.toFixed(0)} → at most ${(raw / Math.max(1, stored / Math.max(1, decidedAt.size))).toFixed(0)} decisions/s from publishing alone`,
      ],
      ['allocator state size (bytes of JSON)', String(JSON.stringify(alloc?.state ?? {}).length)],
    ];
    const width = Math.max(...rows.map(([k]) => k.length));
    out('');
    for (const [k, v] of rows) out(`${k.padEnd(width)}  ${v}`);
    if (args.json !== undefined) writeFileSync(args.json, `${JSON.stringify(figures, null, 2)}\n`);
    process.exitCode = figures.duplicate_vms === 0 && figures.quota_overrun === 0 ? 0 : 1;
  } finally {
    for (const w of workers) await w.stop();
    await env.dispose();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
