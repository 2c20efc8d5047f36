/**
 * `npm run bench:idle [-- --json FILE] [--seconds N] [--settle N]`: what a worker with nothing
 * to do costs. A private nats-server and a fresh database; one worker process started from
 * `actors/main.ts` as deployed, hosting the session, billing and allocator kinds (192 windowed
 * partitions) and the Telegram ingress router; no message published. After `--settle` seconds
 * (it owns its partitions by then), `--seconds` of:
 *
 *  worker_cpu_ms_per_s      CPU time of the worker process per second of wall time
 *  nats_cpu_ms_per_s        the same for its nats-server
 *  postgres_cpu_ms_per_s    the same for PostgreSQL (all its processes: the server is shared)
 *  worker_wakeups_per_s     the worker's voluntary context switches per second, all threads
 *                           (each time it slept and was woken: timers, sockets, its helpers)
 *  raw_wakeup_cpu_us        a raw limit measured in the same run: CPU per wake-up of a bare
 *                           Node process that only wakes on a 10 ms timer (this machine's cost
 *                           of waking a process, whatever it then does)
 *
 * Not a target: an idle worker's cost is what an operator pays per worker for nothing, and
 * on a VM where waking is expensive it is mostly the number of wake-ups.
 */
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import { ensureTopology } from '../../contracts/index.ts';
import { freePort } from '../../deploy/local/nats.ts';
import { createTestDatabase, startNats } from '../harness/index.ts';
import { cpuMeter, cpuSeconds } from './cpu.ts';
import { spawnEntry, untilReady } from './procs.ts';

const { values: args } = parseArgs({
  options: {
    json: { type: 'string' },
    seconds: { type: 'string', default: '30' },
    settle: { type: 'string', default: '15' },
  },
});
const SECONDS = Number(args.seconds);
const SETTLE_S = Number(args.settle);

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Voluntary context switches of every thread of `pid` so far (0 if it is gone). */
function wakeups(pid: number): number {
  let n = 0;
  try {
    for (const t of readdirSync(`/proc/${pid}/task`)) {
      const m = /voluntary_ctxt_switches:\s+(\d+)/.exec(
        readFileSync(`/proc/${pid}/task/${t}/status`, 'utf8'),
      );
      n += Number(m?.[1] ?? 0);
    }
  } catch {
    // Gone, or a thread gone in between.
  }
  return n;
}

/** CPU µs per wake-up of a bare Node process woken by a 10 ms timer for `seconds`. */
async function rawWakeupCpuUs(seconds: number): Promise<number> {
  const child = spawn(process.execPath, ['-e', 'setInterval(() => {}, 10)'], { stdio: 'ignore' });
  const pid = child.pid ?? -1;
  await sleep(1_000);
  const cpu0 = cpuSeconds(pid);
  const w0 = wakeups(pid);
  await sleep(seconds * 1_000);
  const cpu = cpuSeconds(pid) - cpu0;
  const w = wakeups(pid) - w0;
  child.kill('SIGKILL');
  return w === 0 ? NaN : (cpu * 1e6) / w;
}

async function main(): Promise<void> {
  const nats = await startNats();
  const database = await createTestDatabase();
  const nc = await connect({ servers: nats.url, name: 'bench-idle', noAsyncTraces: true });
  try {
    await ensureTopology(await jetstreamManager(nc), { consumersFor: [] });
    const port = await freePort('127.0.0.1');
    const worker = spawnEntry('worker', 'actors/main.ts', {
      NATS_URL: nats.url,
      DATABASE_URL: database.url,
      LOG_LEVEL: 'warn',
      RESPAWN_HTTP_PORT: String(port),
      RESPAWN_ACTORS: 'session,billing,alloc',
      RESPAWN_INGRESS: 'telegram',
    });
    try {
      await untilReady(worker, `http://127.0.0.1:${port}/readyz`);
      await sleep(SETTLE_S * 1_000);
      const pid = worker.process.pid ?? -1;
      const meter = cpuMeter({ worker: () => pid, nats: () => nats.pid });
      const w0 = wakeups(pid);
      await sleep(SECONDS * 1_000);
      const cpu = meter.sample();
      const w = wakeups(pid) - w0;
      const per = (s: number | undefined): number => Math.round(((s ?? 0) / SECONDS) * 1_000);
      const figures = {
        worker_cpu_ms_per_s: per(cpu.worker),
        nats_cpu_ms_per_s: per(cpu.nats),
        postgres_cpu_ms_per_s: per(cpu['postgresql (all processes)']),
        worker_wakeups_per_s: Math.round(w / SECONDS),
        raw_wakeup_cpu_us: Math.round(await rawWakeupCpuUs(Math.min(SECONDS, 10))),
      };
      for (const [k, v] of Object.entries(figures)) process.stdout.write(`${k.padEnd(24)} ${v}\n`);
      if (args.json !== undefined)
        writeFileSync(args.json, `${JSON.stringify(figures, null, 2)}\n`);
    } finally {
      await worker.stop();
    }
  } finally {
    await nc.drain();
    await nats.stop();
    await database.drop();
  }
}

await main();
