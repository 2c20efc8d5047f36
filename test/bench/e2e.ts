/**
 * `npm run bench:e2e [-- --json FILE] [--players 1000] [--rate 500] [--seconds 60]`: players
 * send `/status` through the gateway's real Telegram webhook (HTTP POST with the secret token)
 * at a fixed open-loop rate; per command, the time from the POST to the reply arriving at the
 * Bot API fake (the fake stamps each message) is measured. Each command's out message is
 * matched to the message the fake received through the gateway's own record of it (its sent
 * store: the Telegram message id); a status answer the gateway dropped because a newer one for
 * the same chat was queued behind it (`collapseKey`) is answered by that newer reply, and its
 * time is the time to it.
 *
 * The path of one command: webhook → JetStream `respawn.in.telegram` (200 after the ack) →
 * telegram ingress router → `session.status` command (a partition consumer, one PostgreSQL
 * transaction) → `respawn.out.telegram.<chat>` → the gateway's sender (pacer, KV record,
 * grammY sendMessage) → the fake. Stage times come from core NATS subscriptions on the
 * command and out subjects, so the table says where the time goes.
 *
 * `--topology processes` (the default) runs the deployment's shape: `actors/main.ts` (session,
 * billing and allocator actors plus the Telegram ingress router) and `gateway/main.ts` as child
 * processes started from their entry points, the bench process keeping the load and the Bot
 * API fake. `--topology one-process` composes the same path in the bench's own thread
 * (startLocal's worker, ingress and gateway factories). Each run also prints the CPU time each
 * process spent per command (from /proc), which the machine's load does not distort the way it
 * does latency: at 500 commands/s, their sum against the machine's cores says how busy it was
 * (printed, with the rate at which every core would be full; in the JSON as
 * `cpu_ms_per_command` and `cpu_ceiling_commands_per_s`). With processes, the worker's batch
 * transactions in the phase too (from its /metrics): how many, their deliveries and time each.
 * Raw limits measured in the same run: the fake's own round trip with grammY, and a bare
 * JetStream publish → consume on a stream of the same server. The children log at warn: their
 * lines go to the bench's stderr, and how many the measured phase had is printed (a run with
 * warnings says so next to its figures).
 */
import { writeFileSync } from 'node:fs';
import http from 'node:http';
import { availableParallelism } from 'node:os';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { pino } from 'pino';
import {
  ActorKinds,
  PARTITIONS,
  TelegramSend,
  outTelegramSubject,
  partitionFilter,
} from '../../contracts/index.ts';
import { createSentStore } from '../../gateway/index.ts';
import { awaitSettled, matchReplies, type Answerable } from './e2e-replies.ts';
import { cpuMeter } from './cpu.ts';
import {
  dist,
  postWebhook,
  rawFake,
  rawJetStream,
  startStack,
  statusUpdate,
  type Dist,
  type Stack,
} from './e2e-stack.ts';
import { batchTotals, describeBatches, gatewayMeans, type BatchTotals } from './scrape.ts';

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    players: { type: 'string', default: '1000' },
    rate: { type: 'string', default: '500' },
    seconds: { type: 'string', default: '60' },
    'grace-seconds': { type: 'string', default: '15' },
    'warmup-seconds': { type: 'string', default: '2' },
    'per-chat-ms': { type: 'string', default: '1000' },
    'global-per-second': { type: 'string', default: '1000' },
    topology: { type: 'string', default: 'processes' },
  },
});
const PLAYERS = Number(args.players);
const RATE = Number(args.rate);
const SECONDS = Number(args.seconds);
const GRACE_MS = Number(args['grace-seconds']) * 1000;
const WARMUP_S = Number(args['warmup-seconds']);
const PER_CHAT_MS = Number(args['per-chat-ms']);
const GLOBAL_PER_S = Number(args['global-per-second']);
if (args.topology !== 'processes' && args.topology !== 'one-process') {
  throw new Error('--topology must be processes or one-process');
}
const TOPOLOGY = args.topology;

const TOKEN = '1000001:respawn-bench-fake-token';
const SECRET = `bench-${Math.random().toString(36).slice(2)}`;
const PLAYER_BASE = 5_000_000;
const WARM_BASE = 9_000_000;

const out = (s: string): void => {
  process.stdout.write(`${s}\n`);
};

const f = (n: number): string => (Number.isFinite(n) ? n.toFixed(1) : '-');

interface Cmd extends Answerable {
  chatId: number;
  postAt: number;
  ackMs?: number;
  status?: number;
  cmdAt?: number;
  outAt?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

interface Phase {
  cmds: Cmd[];
  byChat: Map<number, Cmd[]>;
  sendSeconds: number;
}

/** Open loop: command i is due at start + i/rate, whatever happened to the earlier ones. */
async function drive(
  stack: Stack,
  agent: http.Agent,
  base: number,
  players: number,
  seconds: number,
  updateBase: number,
  /** Filled as commands are created, so the stage watcher can stamp them live. */
  byChat: Map<number, Cmd[]>,
  updates: Map<number, Cmd>,
): Promise<Phase> {
  const url = new URL('/telegram/webhook', stack.gatewayUrl);
  const total = Math.round(RATE * seconds);
  const cmds: Cmd[] = [];
  const inflight: Promise<void>[] = [];
  const start = performance.now();
  let i = 0;
  while (i < total) {
    const due = start + (i * 1000) / RATE;
    const now = performance.now();
    if (now < due) {
      await sleep(Math.max(1, Math.floor(due - now)));
      continue;
    }
    const chatId = base + (i % players);
    const cmd: Cmd = { chatId, postAt: Date.now() };
    cmds.push(cmd);
    updates.set(updateBase + i, cmd);
    const list = byChat.get(chatId) ?? [];
    list.push(cmd);
    byChat.set(chatId, list);
    const t = performance.now();
    inflight.push(
      postWebhook(agent, url, statusUpdate(updateBase + i, chatId), SECRET).then((status) => {
        cmd.status = status;
        cmd.ackMs = performance.now() - t;
      }),
    );
    i++;
  }
  const sendSeconds = (performance.now() - start) / 1000;
  await Promise.all(inflight);
  return { cmds, byChat, sendSeconds };
}

/** Stage stamps: the session command and the out message, seen by core subscriptions. */
function watchStages(
  nc: NatsConnection,
  updates: ReadonlyMap<number, Cmd>,
  byChat: ReadonlyMap<number, Cmd[]>,
) {
  const subs: Subscription[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    subs.push(
      nc.subscribe(partitionFilter(ActorKinds.session, p), {
        callback: (_err, m) => {
          const id = /^tg-(\d+)-/.exec(m.headers?.get('Nats-Msg-Id') ?? '')?.[1];
          const cmd = id === undefined ? undefined : updates.get(Number(id));
          if (cmd !== undefined && cmd.cmdAt === undefined) cmd.cmdAt = Date.now();
        },
      }),
    );
  }
  const outSeen = new Map<number, number>();
  const watchChat = (chatId: number): void => {
    subs.push(
      nc.subscribe(outTelegramSubject(String(chatId)), {
        callback: (_err, m) => {
          const at = Date.now();
          const msg = TelegramSend.decode(m.data);
          const k = outSeen.get(chatId) ?? 0;
          outSeen.set(chatId, k + 1);
          const cmd = byChat.get(Number(msg.chatId))?.[k];
          if (cmd === undefined) return;
          cmd.outAt = at;
          cmd.outMsgId = m.headers?.get('Nats-Msg-Id') || undefined;
        },
      }),
    );
  };
  return { watchChat, stop: () => subs.forEach((s) => s.unsubscribe()) };
}

/** The worker process's batch totals so far (processes topology only). */
async function readWorkerBatches(stack: Stack): Promise<BatchTotals | undefined> {
  if (stack.workerMetricsUrl === undefined) return undefined;
  return batchTotals(await (await fetch(stack.workerMetricsUrl)).text());
}

async function main(): Promise<void> {
  const log = pino({ level: process.env.LOG_LEVEL ?? 'warn' }, pino.destination(2));
  const stack = await startStack(log, {
    token: TOKEN,
    secret: SECRET,
    perChatMs: PER_CHAT_MS,
    globalPerS: GLOBAL_PER_S,
    topology: TOPOLOGY,
  });
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256 });
  let failed = false;
  try {
    const fakeRt = await rawFake(stack.fake, TOKEN);
    const js = await rawJetStream(stack.nc);
    // Read only (the gateway made the bucket): how each out message was settled.
    const jsm = await jetstreamManager(stack.nc);
    const sentStore = createSentStore({ nc: stack.nc, jsm });

    const updates = new Map<number, Cmd>();
    const byChat = new Map<number, Cmd[]>();
    const stages = watchStages(stack.nc, updates, byChat);
    for (let p = 0; p < PLAYERS; p++) stages.watchChat(PLAYER_BASE + p);

    // Warm-up on other players (JIT, pools, first rows), not counted.
    const warmPlayers = Math.min(100, PLAYERS);
    if (WARMUP_S > 0) {
      const warm = await drive(
        stack,
        agent,
        WARM_BASE,
        warmPlayers,
        WARMUP_S,
        1,
        new Map(),
        new Map(),
      );
      await awaitSettled(jsm, warm.cmds, GRACE_MS);
    }

    const batchesBefore = await readWorkerBatches(stack);
    const logLinesBefore = stack.children?.map((c) => c.logLines());
    const cpu = cpuMeter(Object.fromEntries(stack.procs.map((p) => [p.name, p.pid])));
    const phase = await drive(
      stack,
      agent,
      PLAYER_BASE,
      PLAYERS,
      SECONDS,
      10_000_000,
      byChat,
      updates,
    );
    await awaitSettled(jsm, phase.cmds, GRACE_MS);
    const cpuUsed = cpu.sample();
    const batchesAfter = await readWorkerBatches(stack);
    stages.stop();

    const { missing, unexpected, collapsed } = await matchReplies(
      sentStore,
      stack.fake,
      phase.byChat,
    );
    sentStore.close();
    const non2xx = phase.cmds.filter((c) => c.status === undefined || c.status >= 300).length;
    const errors = non2xx + missing + unexpected;
    const done = phase.cmds.filter((c) => c.replyAt !== undefined);
    const e2e = dist(done.map((c) => c.replyAt! - c.postAt));
    const firstPost = phase.cmds[0]?.postAt ?? 0;
    const lastReply = Math.max(...done.map((c) => c.replyAt!));
    const commandsPerS = done.length / ((lastReply - firstPost) / 1000);
    const stage = (pick: (c: Cmd) => number | undefined): Dist =>
      dist(done.map(pick).filter((x): x is number => x !== undefined && Number.isFinite(x)));
    const means = await gatewayMeans(stack.gatewayUrl);

    out('');
    out(`bench:e2e  ${PLAYERS} players, /status at ${RATE}/s for ${SECONDS} s (open loop)`);
    out(
      `  gateway: TELEGRAM_GLOBAL_PER_SECOND=${GLOBAL_PER_S}, ` +
        `TELEGRAM_PER_CHAT_INTERVAL_MS=${PER_CHAT_MS}, loopback exempt from the IP limit, ` +
        `player limit default (20/10 s; each player sends one per ${f(PLAYERS / RATE)} s)`,
    );
    out('');
    out('  measure                                     n       p50 ms   p99 ms   max ms');
    const row = (name: string, d: Dist): void =>
      out(
        `  ${name.padEnd(40)} ${String(d.n).padStart(6)} ${f(d.p50).padStart(8)} ` +
          `${f(d.p99).padStart(8)} ${f(d.max).padStart(8)}`,
      );
    row('webhook POST -> reply at fake (e2e)', e2e);
    row(
      '  POST -> 200 (gateway + JS ack)',
      stage((c) => c.ackMs),
    );
    row(
      '  POST -> session cmd published',
      stage((c) => (c.cmdAt ?? NaN) - c.postAt),
    );
    row(
      '  session cmd -> out msg (actor, PG tx)',
      stage((c) => (c.outAt ?? NaN) - (c.cmdAt ?? NaN)),
    );
    row(
      '  out msg -> reply at fake (sender)',
      stage((c) => c.replyAt! - (c.outAt ?? NaN)),
    );
    row('raw: grammY sendMessage -> fake', fakeRt);
    row('raw: JetStream publish -> ack', js.ack);
    row('raw: JetStream publish -> consume', js.e2e);
    out('');
    out(
      `  gateway means: publish->ack ${f(means.publish ?? NaN)} ms, ` +
        `sendMessage call ${f(means.sendMessage ?? NaN)} ms`,
    );
    out(
      `  offered ${phase.cmds.length} commands in ${f(phase.sendSeconds)} s ` +
        `(${f(phase.cmds.length / phase.sendSeconds)}/s); ` +
        `completed ${done.length} at ${f(commandsPerS)}/s (first POST -> last reply)`,
    );
    out(
      `  errors ${errors}: non-2xx/failed POST ${non2xx}, missing replies ${missing} ` +
        `(after ${GRACE_MS / 1000} s grace), unexpected extra replies ${unexpected}`,
    );
    out(
      `  collapsed ${collapsed}: answers dropped unsent because a newer one to the same player ` +
        'was queued (not errors: each is timed to the newer reply)',
    );
    if (stack.children !== undefined)
      out(
        `  log lines at warn or above in the phase (shown on stderr): ` +
          stack.children
            .map((c, i) => `${c.name} ${c.logLines() - (logLinesBefore?.[i] ?? 0)}`)
            .join(', '),
      );
    const cpuRows = Object.entries(cpuUsed).map(
      ([name, s]) => `${name} ${f((s * 1000) / phase.cmds.length)}`,
    );
    out(`  CPU ms per command (${TOPOLOGY}): ${cpuRows.join(', ')}`);
    // The same figures against the machine: how many of its cores the offered rate kept busy,
    // and the rate at which the cores would be full at this cost (queueing sets the tail long
    // before that).
    const cpuMsPerCmd =
      (Object.values(cpuUsed).reduce((a, v) => a + v, 0) * 1000) / Math.max(1, phase.cmds.length);
    const cores = availableParallelism();
    out(
      `  CPU in all ${f(cpuMsPerCmd)} ms per command: ${f((cpuMsPerCmd * RATE) / 1000)} of ` +
        `${cores} cores busy at ${RATE}/s; all ${cores} full at ${f((cores * 1000) / cpuMsPerCmd)}/s`,
    );
    // The worker's batch transactions in the phase: their deliveries and time (the PG part).
    if (batchesBefore !== undefined && batchesAfter !== undefined)
      out(`  worker batches ${describeBatches(batchesBefore, batchesAfter)}`);
    out(`  target p99 <= 25 ms: ${e2e.p99 <= 25 ? 'met' : 'NOT met'} (p99 ${f(e2e.p99)} ms)`);
    if (args.json !== undefined) {
      const result = {
        commands_per_s: Number(commandsPerS.toFixed(1)),
        p50_ms: e2e.p50,
        p99_ms: e2e.p99,
        max_ms: e2e.max,
        errors,
        collapsed,
        // Not targets: what the run cost the machine (see the CPU lines above).
        cpu_ms_per_command: Number(cpuMsPerCmd.toFixed(2)),
        cpu_ceiling_commands_per_s: Math.round((cores * 1000) / cpuMsPerCmd),
      };
      writeFileSync(args.json, `${JSON.stringify(result, null, 2)}\n`);
      out(`  wrote ${args.json}`);
    }
  } catch (err) {
    failed = true;
    log.error({ err }, 'bench failed');
  } finally {
    agent.destroy();
    await stack.stop();
  }
  process.exitCode = failed ? 1 : 0;
  // Everything is stopped; a handle someone else leaked must not keep the bench alive.
  setTimeout(() => process.exit(process.exitCode), 2_000).unref();
}

await main();
