/**
 * `npm run bench:load [-- --players 10000 --hours 24 --factor 110 --json FILE --html FILE]`:
 * generates a day of synthetic players (deploy/replay/generate.ts), starts a fresh deployment
 * (test/bench/load/stack.ts), replays the recording straight into RESPAWN_IN on the replay
 * clock at `--factor` × real time, waits for every session to end, then reports throughput,
 * speed-up, latency (ingress publish → first `respawn.out.telegram.*` reply caused by it),
 * peak RSS per process, PostgreSQL commits per player-minute of metering and the invariants.
 * docs/load.md says what each figure means.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { jetstream, jetstreamManager } from '@nats-io/jetstream';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { pino } from 'pino';
import { natsReplayClock, type ReplayClock } from '../../deploy/replay/clock.ts';
import { generateRecording, type BadInput } from '../../deploy/replay/generate.ts';
import { openRecording } from '../../deploy/replay/read.ts';
import { connectPostgres } from '../harness/index.ts';
import { cpuMeter } from './cpu.ts';
import { checkInvariants } from './load/checks.ts';
import { htmlReport } from './load/report.ts';
import { startStack, virtualTime } from './load/stack.ts';

const { values: args } = parseArgs({
  options: {
    players: { type: 'string', default: '10000' },
    hours: { type: 'string', default: '24' },
    from: { type: 'string' },
    // Above the 100x target: the speed-up can only reach the factor (docs/load.md, "Time").
    factor: { type: 'string', default: '110' },
    workers: { type: 'string', default: '1' },
    seed: { type: 'string', default: '1' },
    json: { type: 'string' },
    html: { type: 'string' },
    'drain-minutes': { type: 'string', default: '10' },
  },
});
const PLAYERS = Number(args.players);
const HOURS = Number(args.hours);
const FACTOR = Number(args.factor);
const SEED = Number(args.seed);
// A window shorter than a day is put on the evening peak (ending 23:00 IST) unless --from says.
const FROM =
  args.from ??
  (HOURS >= 24
    ? undefined
    : new Date(Date.parse('2026-11-20T17:30:00.000Z') - HOURS * 3_600_000).toISOString());
const OUT_DIR = path.resolve('.tmp/bench-load');

const out = (s: string): void => void process.stdout.write(`${s}\n`);
const pct = (s: number[], p: number): number =>
  s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] ?? NaN;

function rssMb(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m === null ? 0 : Number(m[1]) / 1024;
  } catch {
    return 0;
  }
}

async function main(): Promise<void> {
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
  mkdirSync(OUT_DIR, { recursive: true });
  const file = path.join(OUT_DIR, `day-${PLAYERS}p-${HOURS}h-s${SEED}.jsonl`);
  const gen = await generateRecording({
    path: file,
    players: PLAYERS,
    hours: HOURS,
    seed: SEED,
    ...(FROM === undefined ? {} : { from: FROM }),
  });
  const meta = gen.header.meta as {
    idlePlayers: string[];
    evictionsPerSpotVmMonth: number;
    bad: { inputs: BadInput[] };
  };
  out(
    `recording ${file}: ${gen.count} messages, ${gen.bad.length} injected bad inputs, ${gen.header.from} → ${gen.header.to}`,
  );
  const fromMs = Date.parse(gen.header.from);
  const toMs = Date.parse(gen.header.to);
  const captured = new Set<string>();
  for await (const m of (await openRecording(file)).messages) {
    if (m.source !== 'razorpay') continue;
    const b = JSON.parse(Buffer.from(m.data, 'base64').toString('utf8')) as {
      event?: string;
      payload?: { payment?: { entity?: { id?: string; notes?: unknown } } };
    };
    const id = b.payload?.payment?.entity?.id;
    const bad = meta.bad.inputs.some((x) => x.msgId === m.headers['Nats-Msg-Id']?.[0]);
    if (
      !bad &&
      id !== undefined &&
      (b.event === 'payment.captured' || b.event === 'payment_link.paid')
    )
      captured.add(id);
  }

  let clock: ReplayClock | undefined;
  const time = virtualTime(fromMs, FACTOR);
  const stack = await startStack({
    log,
    time,
    players: PLAYERS,
    workers: Number(args.workers),
    idlePlayers: new Set(meta.idlePlayers),
    evictionsPerSpotVmMonth: meta.evictionsPerSpotVmMonth,
    seed: SEED,
    setClock: async (nc) => {
      clock = await natsReplayClock(nc);
      await clock.set(new Date(fromMs));
    },
  });
  const { nc } = stack;
  const js = jetstream(nc);
  const jsm = await jetstreamManager(nc);
  const pg = await connectPostgres(stack.database.url);
  const dbName = stack.database.name;
  const commits = async (): Promise<number> =>
    Number(
      (
        (await pg.query('select xact_commit from pg_stat_database where datname = $1', [dbName]))
          .rows[0] as { xact_commit: string }
      ).xact_commit,
    );

  // Invariant watches on the ARM fake: two live VMs of one session; usage over a limit.
  const liveBySession = new Map<string, Set<string>>();
  let duplicateVmSessions = 0;
  let quotaOverruns = 0;
  stack.arm.onEvent((e) => {
    const session = 'tags' in e ? e.tags.session : stack.arm.state.vm(e.vmName)?.tags.session;
    if (e.type === 'vm.running' && session !== undefined) {
      const s = liveBySession.get(session) ?? new Set<string>();
      s.add(e.vmName);
      if (s.size > 1) duplicateVmSessions++;
      liveBySession.set(session, s);
    } else if (e.type === 'vm.deleted' || e.type === 'vm.evicted' || e.type === 'vm.failed') {
      for (const s of liveBySession.values()) s.delete(e.vmName);
    }
  });

  // Latency: ingress publish → the first Telegram reply it caused (causation id tg-<update>).
  const publishedAt = new Map<string, number>();
  const latencies: number[] = [];
  const sub = nc.subscribe('respawn.out.telegram.>', {
    callback: (_e, m) => {
      const id = /^tg-\d+/.exec(m.headers?.get('Respawn-Causation-Id') ?? '')?.[0];
      const t0 = id === undefined ? undefined : publishedAt.get(id);
      if (id !== undefined && t0 !== undefined) {
        latencies.push(performance.now() - t0);
        publishedAt.delete(id);
      }
    },
  });

  // Samples: RSS, backlog and handled rate every second.
  const peak: Record<string, number> = {};
  const cpu = cpuMeter(Object.fromEntries(stack.procs.map((p) => [p.name, p.pid])));
  let cpuUsed: Record<string, number> = {};
  const throughput: { t: number; perS: number }[] = [];
  const backlog: { t: number; n: number }[] = [];
  const wall0 = performance.now();
  let lastDelivered = 0;
  let samples = 0;
  let peakRunningVms = 0;
  const sample = async (): Promise<void> => {
    for (const p of stack.procs) {
      peak[p.name] = Math.max(peak[p.name] ?? 0, rssMb(p.pid()));
    }
    // The last reading before a process ends counts (cpu.ts).
    cpuUsed = cpu.sample();
    let pending = 0;
    let delivered = 0;
    for (const c of ['ingress-telegram', 'ingress-agent', 'ingress-razorpay']) {
      const ci = await jsm.consumers.info('RESPAWN_IN', c).catch(() => undefined);
      pending += (ci?.num_pending ?? 0) + (ci?.num_ack_pending ?? 0);
      delivered += ci?.ack_floor.stream_seq === undefined ? 0 : (ci.ack_floor.consumer_seq ?? 0);
    }
    for (const u of stack.arm.state.usage()) if (u.current > u.limit) quotaOverruns++;
    if (++samples % 5 === 0) {
      // Players on a VM at once (the fake's running VMs), every 5 s: vms() copies them all.
      const running = stack.arm.state.vms().filter((v) => v.powerState === 'running').length;
      peakRunningVms = Math.max(peakRunningVms, running);
    }
    const t = (performance.now() - wall0) / 1000;
    backlog.push({ t, n: pending });
    throughput.push({ t, perS: Math.max(0, delivered - lastDelivered) });
    lastDelivered = delivered;
  };
  const sampler = setInterval(() => void sample().catch(() => undefined), 1000);

  const commits0 = await commits();
  // Replay: messages go out when the virtual clock reaches their recorded time.
  const ticker = setInterval(
    () => void clock?.set(new Date(time.nowMs())).catch(() => undefined),
    20,
  );
  let sent = 0;
  let errors = 0;
  const inflight = new Set<Promise<void>>();
  const replayStart = performance.now();
  for await (const m of (await openRecording(file)).messages) {
    const due = Date.parse(m.time);
    while (time.nowMs() < due)
      await new Promise((r) =>
        setTimeout(r, Math.min(50, Math.max(1, time.real(due - time.nowMs())))),
      );
    await clock?.set(new Date(Math.max(due, time.nowMs())));
    const h = natsHeaders();
    for (const [k, vs] of Object.entries(m.headers)) for (const v of vs) h.append(k, v);
    const id = m.headers['Nats-Msg-Id']?.[0] ?? '';
    publishedAt.set(id, performance.now());
    const p = js.publish(m.subject, Buffer.from(m.data, 'base64'), { headers: h }).then(
      () => void sent++,
      () => void errors++,
    );
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    if (inflight.size >= 256) await Promise.race(inflight);
  }
  await Promise.all(inflight);
  const replayWallMs = performance.now() - replayStart;

  // Drain: the clock runs on until every session is idle and the ingress backlog is empty.
  const deadline = performance.now() + Number(args['drain-minutes']) * 60_000;
  let caughtUp = false;
  let notIdle = 0;
  for (;;) {
    const active = Number(
      (
        (
          await pg.query(
            `select count(*)::int as n from rt_state where actor = 'session' and state->>'phase' <> 'idle'`,
          )
        ).rows[0] as { n: number }
      ).n,
    );
    const last = backlog.at(-1)?.n ?? 1;
    notIdle = active;
    caughtUp = active === 0 && last === 0 && time.nowMs() >= toMs;
    if (caughtUp || performance.now() > deadline) break;
    await new Promise((r) => setTimeout(r, 1000));
  }
  const wallMs = performance.now() - replayStart;
  // The recorded day over the wall time it took to handle it all. A run that did not catch up
  // within the drain did not replay the day at that speed, whatever the clock says.
  const recordedMs = toMs - fromMs;
  clearInterval(ticker);
  clearInterval(sampler);
  await sample();
  sub.unsubscribe();
  const commitsDelta = (await commits()) - commits0;
  const checks = await checkInvariants({
    nc,
    pg,
    arm: stack.arm,
    capturedPayments: captured,
    badMsgIds: new Set(gen.bad.map((b) => b.msgId)),
    duplicateVmSessions,
    quotaOverruns,
  });
  const agentReports = (
    await jsm.consumers.info('RESPAWN_IN', 'ingress-agent').catch(() => undefined)
  )?.delivered.stream_seq;
  const inInfo = await jsm.streams.info('RESPAWN_IN');
  const sorted = [...latencies].sort((a, b) => a - b);
  const meterMinutes = checks.meterSeconds / 60;
  const result = {
    players: PLAYERS,
    hours: HOURS,
    factor: FACTOR,
    recorded_messages: gen.count,
    ingress_messages_total: inInfo.state.messages,
    agent_reports_seen_stream_seq: agentReports,
    events_per_s: Number((inInfo.state.messages / (wallMs / 1000)).toFixed(1)),
    recorded_events_per_s: Number((sent / (replayWallMs / 1000)).toFixed(1)),
    wall_s: Number((wallMs / 1000).toFixed(1)),
    speedup: Number((recordedMs / wallMs).toFixed(1)),
    caught_up: caughtUp,
    sessions_not_idle_at_end: notIdle,
    p50_ms: Number(pct(sorted, 50).toFixed(1)),
    p99_ms: Number(pct(sorted, 99).toFixed(1)),
    replies_measured: sorted.length,
    peak_running_vms: peakRunningVms,
    peak_rss_mb: Object.fromEntries(Object.entries(peak).map(([k, v]) => [k, Math.round(v)])),
    // CPU seconds each process used from the first publish to the end of the drain (the
    // machine's cores are the ceiling: wall_s × cores).
    cpu_s: Object.fromEntries(Object.entries(cpuUsed).map(([k, v]) => [k, Number(v.toFixed(1))])),
    cpu_ms_per_ingress_message: Number(
      (
        (Object.values(cpuUsed).reduce((a, v) => a + v, 0) * 1000) /
        Math.max(1, inInfo.state.messages)
      ).toFixed(2),
    ),
    pg_commits: commitsDelta,
    metered_player_minutes: Math.round(meterMinutes),
    pg_tx_per_player_minute:
      meterMinutes > 0 ? Number((commitsDelta / meterMinutes).toFixed(2)) : null,
    evictions: stack.evictions,
    publish_errors: errors,
    invariants: checks.invariants,
    invariant_detail: checks.detail,
  };
  out(JSON.stringify(result, null, 2));
  out(
    `target >= 100x real time: ${
      !caughtUp
        ? `NOT met (fell behind: ${notIdle} sessions not idle when the drain ended)`
        : result.speedup >= 100
          ? 'met'
          : 'NOT met'
    }; worker RSS <= 512 MB: ${
      Object.entries(result.peak_rss_mb)
        .filter(([k]) => k.startsWith('worker'))
        .every(([, v]) => v <= 512)
        ? 'met'
        : 'NOT met'
    }; invariants: ${Object.values(checks.invariants).every(Boolean) ? 'all hold' : 'NOT all hold'}`,
  );
  const jsonPath = args.json ?? path.join(OUT_DIR, 'load.json');
  writeFileSync(jsonPath, `${JSON.stringify(result, null, 2)}\n`);
  const htmlPath = args.html ?? jsonPath.replace(/\.json$/, '') + '.html';
  writeFileSync(htmlPath, htmlReport({ summary: result, latencies, throughput, backlog }));
  out(`wrote ${jsonPath} and ${htmlPath}`);
  await pg.end();
  await stack.stop();
  setTimeout(() => process.exit(process.exitCode ?? 0), 2_000).unref();
}

main().catch((err: unknown) => {
  process.stderr.write(`${String(err instanceof Error ? err.stack : err)}\n`);
  process.exit(1);
});
