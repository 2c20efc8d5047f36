/**
 * What the runtime's tests share: a private NATS server from deploy/nats, a fresh database
 * with the runtime's tables, and helpers to publish demo commands and read back outcomes.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type JetStreamClient,
  type JetStreamManager,
} from '@nats-io/jetstream';
import {
  connect,
  headers as natsHeaders,
  nanos,
  type NatsConnection,
} from '@nats-io/transport-node';
import { pino, type Logger } from 'pino';
import {
  ActorKinds,
  DemoAdd,
  Streams,
  cmdSubject,
  ensureTopology,
  type MessageDef,
} from '../../contracts/index.ts';
import {
  createWorker,
  migrate,
  openDatabase,
  systemClock,
  type ActorDefinition,
  type Database,
  type Worker,
  type WorkerOptions,
} from '../../actors/runtime/index.ts';
import { demoActor, type DemoState } from '../../actors/demo/index.ts';
import {
  createTestDatabase,
  startNats,
  type NatsServerHandle,
  type TestDatabase,
} from '../harness/index.ts';

export interface RuntimeEnv {
  nats: NatsServerHandle;
  database: TestDatabase;
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  db: Database;
  log: Logger;
  dispose(): Promise<void>;
}

export const quietLog = (): Logger => pino({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });

export async function startRuntimeEnv(): Promise<RuntimeEnv> {
  const nats = await startNats();
  const database = await createTestDatabase();
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, noAsyncTraces: true });
  const jsm = await jetstreamManager(nc);
  await ensureTopology(jsm, { consumersFor: [ActorKinds.demo] });
  const log = quietLog();
  const db = await openDatabase({ url: database.url, log });
  await migrate(db);
  return {
    nats,
    database,
    nc,
    js: jetstream(nc),
    jsm,
    db,
    log,
    async dispose() {
      await nc.close();
      await db.close();
      await database.drop();
      await nats.stop();
    },
  };
}

/** A worker hosting the demo actor on `env`, on the system clock; `extra` overrides any option. */
export function demoWorker(env: RuntimeEnv, extra: Partial<WorkerOptions> = {}): Worker {
  return createWorker({
    nc: env.nc,
    db: env.db,
    log: env.log,
    clock: systemClock,
    actors: [demoActor as unknown as ActorDefinition],
    ...extra,
  });
}

export async function publish<T extends string, P>(
  js: JetStreamClient,
  key: string,
  verb: string,
  def: MessageDef<T, P>,
  value: P,
  msgId?: string,
): Promise<void> {
  const h = natsHeaders();
  await js.publish(cmdSubject(ActorKinds.demo, key, verb), def.encode(value), {
    headers: h,
    ...(msgId === undefined ? {} : { msgID: msgId }),
  });
}

export function addMsgId(key: string, n: number): string {
  return `add-${key}-${n}`;
}

export async function publishAdds(
  js: JetStreamClient,
  key: string,
  from: number,
  to: number,
): Promise<void> {
  const acks = [];
  for (let n = from; n <= to; n++) {
    acks.push(
      js.publish(cmdSubject(ActorKinds.demo, key, 'add'), DemoAdd.encode({ n, amount: 1 }), {
        msgID: addMsgId(key, n),
      }),
    );
  }
  await Promise.all(acks);
}

export async function demoStates(
  db: Database,
): Promise<Map<string, DemoState & { version: number }>> {
  const rows = (await db
    .knex('rt_state')
    .select('key', 'state', 'version')
    .where({ actor: 'demo' })) as {
    key: string;
    state: DemoState;
    version: number;
  }[];
  return new Map(rows.map((r) => [r.key, { ...r.state, version: r.version }]));
}

/** Polls `check` until it returns true or the deadline passes (then fails with `what`). */
export async function eventually(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * SIGSTOP to `pid`, then waits until the kernel shows it stopped (`T` in /proc/<pid>/stat):
 * kill(2) returns before a process running on another core has stopped, and in that gap it
 * may still answer (a nats-server acknowledging one more publish).
 */
export async function pauseProcess(pid: number): Promise<void> {
  process.kill(pid, 'SIGSTOP');
  const deadline = Date.now() + 5_000;
  for (;;) {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    // The state is the field after the command name, which is in parentheses.
    if (stat.slice(stat.lastIndexOf(')') + 2).startsWith('T')) return;
    if (Date.now() > deadline) throw new Error(`process ${pid} did not stop after SIGSTOP`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

/** Every stored message of a stream whose subject starts with `prefix`. */
export async function streamMessages(
  jsm: JetStreamManager,
  stream: string,
  prefix = '',
): Promise<{ subject: string; data: Uint8Array; headers: Record<string, string> }[]> {
  const info = await jsm.streams.info(stream);
  const out = [];
  for (
    let seq = info.state.first_seq;
    seq <= info.state.last_seq && info.state.messages > 0;
    seq++
  ) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
    if (m === null || !m.subject.startsWith(prefix)) continue;
    const headers: Record<string, string> = {};
    if (m.header !== undefined) for (const k of m.header.keys()) headers[k] = m.header.get(k);
    out.push({ subject: m.subject, data: m.data, headers });
  }
  return out;
}

export async function countEvents(jsm: JetStreamManager): Promise<number> {
  return (await jsm.streams.info(Streams.events.name)).state.messages;
}

/**
 * A worker in its own process (the real entry point), for kill -9 and SIGSTOP. `pipeLog`: its
 * stdout (the JSON log) is readable on `child.stdout` instead of shown.
 */
export function spawnWorker(
  env: RuntimeEnv,
  extra: Record<string, string> = {},
  pipeLog = false,
): ChildProcess {
  const child = spawn(process.execPath, ['--import', 'tsx', 'actors/main.ts'], {
    env: {
      ...process.env,
      NATS_URL: env.nats.url,
      DATABASE_URL: env.database.url,
      RESPAWN_ACTORS: 'demo',
      RESPAWN_MIGRATE: 'false',
      // Several workers per test: no probe/metrics port to fight over.
      RESPAWN_HTTP_PORT: '0',
      LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'warn',
      ...extra,
    },
    stdio: ['ignore', pipeLog ? 'pipe' : 'inherit', 'inherit'],
  });
  return child;
}

/** A worker's log as it arrives (spawned with `pipeLog`): its JSON lines, and any that is not. */
export interface WorkerLog {
  lines: { level: number; msg: string }[];
  /** stdout lines that are not JSON (a library printing with console). */
  plain: string[];
}

export function readWorkerLog(child: ChildProcess): WorkerLog {
  const log: WorkerLog = { lines: [], plain: [] };
  let partial = '';
  child.stdout!.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const l of lines.filter(Boolean)) {
      if (l.startsWith('{')) log.lines.push(JSON.parse(l) as WorkerLog['lines'][number]);
      else log.plain.push(l);
    }
  });
  return log;
}

/** SIGKILL to a worker process still running, and its exit awaited. */
export async function killWorker(child: ChildProcess | undefined): Promise<void> {
  if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
  child.kill('SIGKILL');
  await exited(child);
}

/** A worker's `/readyz` on `port` (actors/http.ts): its status and what each check said. */
export async function workerReadyz(port: number): Promise<{
  status: number;
  body: { ok?: boolean; checks?: Record<string, { ok: boolean; detail: string }> };
}> {
  const res = await fetch(`http://127.0.0.1:${port}/readyz`, {
    signal: AbortSignal.timeout(5_000),
  });
  return { status: res.status, body: (await res.json()) as { ok?: boolean } };
}

export function exited(child: ChildProcess): Promise<number | null> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve(child.exitCode);
  return new Promise((resolve) => child.once('exit', (code) => resolve(code)));
}

/** Every `demo.added` event, read with an ordered consumer. */
export async function addedEvents(
  js: JetStreamClient,
  jsm: JetStreamManager,
): Promise<{ key: string; n: number }[]> {
  const info = await jsm.streams.info(Streams.events.name);
  if (info.state.messages === 0) return [];
  // 2.9 takes one filter subject per consumer, so an ephemeral consumer rather than ordered().
  const ci = await jsm.consumers.add(Streams.events.name, {
    filter_subject: 'respawn.demo.*.evt.added',
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    inactive_threshold: nanos(30_000),
  });
  const c = await js.consumers.get(Streams.events.name, ci.name);
  const out: { key: string; n: number }[] = [];
  if (ci.num_pending === 0) return out;
  const iter = await c.fetch({ max_messages: ci.num_pending, expires: 10_000 });
  for await (const m of iter) {
    const v = JSON.parse(new TextDecoder().decode(m.data)) as { key: string; n: number };
    out.push({ key: v.key, n: v.n });
    if ((m.info.pending ?? 0) === 0) break;
  }
  return out;
}
