/**
 * The deployment a load run replays into, on this machine: a private nats-server, a fresh
 * database, actor workers as separate processes (the real entry point, actors/main.ts, with
 * the ingress routers and the Azure effects runner against the ARM fake), and in the bench
 * process the gateway (agent reports, Razorpay effects), the ARM, Telegram and Razorpay fakes,
 * the simulated VM agents and a seeded Spot eviction driver. Time: the replay clock
 * (RESPAWN_CLOCK=replay) that the bench moves at a fixed factor of real time; every simulated
 * delay (VM create, agent boot, heartbeats, eviction notice) is that recorded delay ÷ factor.
 */
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import { createAgentSim, type AgentSim } from '../../../deploy/agent-sim/index.ts';
import { startArmFake, type ArmFake } from '../../../deploy/fakes/arm/index.ts';
import { startRazorpayFake, type RazorpayFake } from '../../../deploy/fakes/razorpay/index.ts';
import { startTelegramFake, type TelegramFake } from '../../../deploy/fakes/telegram/index.ts';
import { freePort } from '../../../deploy/local/nats.ts';
import { createRng } from '../../../deploy/replay/generate-rng.ts';
import { loadGatewayEnv, runGateway } from '../../../gateway/index.ts';
import {
  createTestDatabase,
  redisPrefix,
  redisUrl,
  startNats,
  type NatsServerHandle,
  type TestDatabase,
} from '../../harness/index.ts';
import { spawnEntry, type Child } from '../procs.ts';

export const REGION = 'centralindia';
const TOKEN = '1000001:respawn-load-fake-token';
const RZP = { keyId: 'rzp_test_respawnload', keySecret: 'respawn-load-key-secret' };
const SSH = 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFakeKeyForTests load';

/** Recorded time moving at `factor` × real time from `startMs` (recorded) at `wall0` (real). */
export interface VirtualTime {
  factor: number;
  nowMs(): number;
  /** A recorded delay as real milliseconds. */
  real(recordedMs: number): number;
}

export function virtualTime(startMs: number, factor: number): VirtualTime {
  const wall0 = Date.now();
  return {
    factor,
    nowMs: () => startMs + (Date.now() - wall0) * factor,
    real: (ms) => Math.max(1, Math.round(ms / factor)),
  };
}

export interface Proc {
  name: string;
  pid: () => number;
}

export interface Stack {
  nats: NatsServerHandle;
  database: TestDatabase;
  nc: NatsConnection;
  arm: ArmFake;
  telegram: TelegramFake;
  razorpay: RazorpayFake;
  agents: AgentSim;
  procs: Proc[];
  evictions: { scheduled: number; done: number };
  stop(): Promise<void>;
}

export interface StackOptions {
  log: Logger;
  time: VirtualTime;
  players: number;
  workers: number;
  idlePlayers: ReadonlySet<string>;
  evictionsPerSpotVmMonth: number;
  seed: number;
  /** Set before the workers start, so they begin at the recording's first instant. */
  setClock: (nc: NatsConnection) => Promise<void>;
}

export async function startStack(o: StackOptions): Promise<Stack> {
  const { log, time } = o;
  const stops: (() => Promise<void>)[] = [];
  const children: Child[] = [];
  const stop = async (): Promise<void> => {
    for (const s of stops.reverse()) {
      try {
        await s();
      } catch (err) {
        log.warn({ err }, 'stop failed');
      }
    }
  };
  try {
    const nats = await startNats();
    stops.push(() => nats.stop());
    const database = await createTestDatabase();
    stops.push(() => database.drop());
    const nc = await connect({ servers: nats.url, name: 'bench-load', maxReconnectAttempts: -1 });
    stops.push(() => nc.drain());
    await o.setClock(nc);
    // Room for the evening peak: a sixth of the players at once, 4 cores a VM.
    const cores = Math.max(16, Math.ceil(o.players / 6) * 4);
    const arm = await startArmFake({
      subscriptionId: '00000000-0000-0000-0000-00000000b10a',
      resourceGroup: 'respawn-load',
      location: REGION,
      quotas: { lowPriorityCores: cores, standardNCASv3_T4Family: cores, cores: cores * 2 },
      lroPolls: 1,
      lroLatencyMs: time.real(60_000),
      evictionNoticeMs: time.real(30_000),
      now: () => time.nowMs(),
      seed: o.seed,
    });
    stops.push(() => arm.stop());
    const telegram = await startTelegramFake({ token: TOKEN, port: 0, webhookRetryMs: 200 });
    stops.push(() => telegram.stop());
    const gatewayPort = await freePort('127.0.0.1');
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const webhookSecret = `load-${o.seed}-webhook`;
    const razorpay = await startRazorpayFake({
      ...RZP,
      // Billing's link expiry is on recorded time: the fake must judge it on the same clock.
      now: () => new Date(time.nowMs()),
      webhookSecret,
      webhookUrl: `${gatewayUrl}/razorpay/webhook`,
      port: 0,
    });
    stops.push(() => razorpay.stop());
    const agentSecret = `load-agent-secret-${o.seed}-0123456789abcdef`;
    const base = {
      NATS_URL: nats.url,
      DATABASE_URL: database.url,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      RESPAWN_HTTP_PORT: '0',
      RESPAWN_CLOCK: 'replay',
      RESPAWN_REGION: REGION,
    };
    // The first worker migrates and hosts the routers and the Azure effects; others only actors.
    for (let i = 0; i < o.workers; i++) {
      const name = `worker-${i + 1}`;
      const env: Record<string, string> = {
        ...base,
        RESPAWN_ACTORS: 'session,billing,alloc',
        RESPAWN_MIGRATE: i === 0 ? 'true' : 'false',
        ...(i === 0
          ? {
              RESPAWN_INGRESS: 'telegram,agent,razorpay',
              RESPAWN_AZURE_EFFECTS: 'true',
              AZURE_SUBSCRIPTION_ID: arm.subscriptionId,
              AZURE_RESOURCE_GROUP: arm.resourceGroup,
              AZURE_SSH_PUBLIC_KEY: SSH,
              AZURE_ARM_ENDPOINT: arm.url,
              AZURE_ARM_CA_FILE: arm.caCertPath,
              // Each VM's agent bootstrap (userData): where the simulated agents report.
              AGENT_TOKEN_SECRET: agentSecret,
              RESPAWN_AGENT_REPORT_URL: `${gatewayUrl}/agent/report`,
              // Azure's ~2 s between polls of a long-running operation, in recorded time.
              AZURE_POLL_INTERVAL_MS: String(time.real(2_000)),
            }
          : {}),
      };
      if (i > 0) await new Promise((r) => setTimeout(r, 3_000));
      const child = spawnEntry(name, 'actors/main.ts', env);
      children.push(child);
      stops.push(() => child.stop());
    }
    const env = loadGatewayEnv({
      NATS_URL: nats.url,
      REDIS_URL: redisUrl(),
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'warn',
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: String(gatewayPort),
      TELEGRAM_BOT_TOKEN: TOKEN,
      TELEGRAM_API_ROOT: telegram.url,
      TELEGRAM_MODE: 'webhook',
      TELEGRAM_WEBHOOK_SECRET: `load-${o.seed}-telegram`,
      TELEGRAM_WEBHOOK_URL: `${gatewayUrl}/telegram/webhook`,
      TELEGRAM_PER_CHAT_INTERVAL_MS: '0',
      TELEGRAM_GLOBAL_PER_SECOND: '1000',
      RAZORPAY_WEBHOOK_SECRET: webhookSecret,
      AGENT_TOKEN_SECRET: agentSecret,
      RATE_LIMIT_PREFIX: redisPrefix(),
      RATE_LIMIT_IP_EXEMPT: '127.0.0.0/8,::1/128',
    });
    const gateway = await runGateway(env, log, {
      razorpayApi: { ...RZP, baseUrl: razorpay.url, timeoutMs: 10_000, maxAttempts: 8 },
    });
    stops.push(() => gateway.stop());
    const playerOf = (vm: string): string => /^vm-([0-9]+)-/.exec(vm)?.[1] ?? '';
    const agents = createAgentSim({
      arm,
      log,
      bootDelayMs: time.real(45_000),
      heartbeatMs: time.real(30_000),
      retryMs: time.real(5_000),
      now: () => new Date(time.nowMs()),
      playing: (vm) => !o.idlePlayers.has(playerOf(vm)),
    });
    agents.start();
    stops.push(() => agents.stop());
    const evictions = evictionDriver(arm, time, o.evictionsPerSpotVmMonth, o.seed, log);
    stops.push(() => Promise.resolve(evictions.stop()));
    const procs: Proc[] = [
      { name: 'bench (gateway, fakes, agents)', pid: () => process.pid },
      { name: 'nats-server', pid: () => nats.pid },
      ...children.map((c) => ({ name: c.name, pid: () => c.process.pid ?? -1 })),
    ];
    return {
      nats,
      database,
      nc,
      arm,
      telegram,
      razorpay,
      agents,
      procs,
      evictions: evictions.counts,
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/**
 * Seeded Spot evictions: each Spot VM that starts running draws an exponential lifetime at
 * `perMonth` evictions per VM-month (recorded time); if it is still there then, the ARM fake
 * announces a Preempt (the agent relays it) and evicts it after the notice.
 */
function evictionDriver(
  arm: ArmFake,
  time: VirtualTime,
  perMonth: number,
  seed: number,
  log: Logger,
) {
  const rng = createRng(seed ^ 0x5eed);
  const ratePerMs = perMonth / (30 * 24 * 3_600_000);
  const timers = new Map<string, NodeJS.Timeout>();
  const counts = { scheduled: 0, done: 0 };
  const off = arm.onEvent((e) => {
    if (e.type === 'vm.running') {
      if (ratePerMs <= 0 || arm.state.vm(e.vmName)?.priority !== 'Spot') return;
      const afterMs = -Math.log(1 - rng.next()) / ratePerMs;
      // Only lifetimes that can matter within a day are armed.
      if (afterMs > 2 * 24 * 3_600_000) return;
      counts.scheduled++;
      const t = setTimeout(() => {
        timers.delete(e.vmName);
        try {
          arm.preempt(e.vmName);
          counts.done++;
        } catch (err) {
          log.debug({ err, vm: e.vmName }, 'eviction skipped');
        }
      }, time.real(afterMs));
      timers.set(e.vmName, t);
    } else if (e.type === 'vm.deleted' || e.type === 'vm.evicted' || e.type === 'vm.failed') {
      clearTimeout(timers.get(e.vmName));
      timers.delete(e.vmName);
    }
  });
  return {
    counts,
    stop() {
      off();
      for (const t of timers.values()) clearTimeout(t);
    },
  };
}
