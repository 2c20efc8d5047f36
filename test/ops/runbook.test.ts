/**
 * docs/operations.md cannot rot: every command of its `sh` blocks is run here, in the order an
 * operator would, against a private nats-server (deploy/nats/respawn.conf) and a real worker
 * hosting the session actor, and its result is checked against what the page says it shows.
 * The `nats` CLI is not installed on these machines, so each CLI command is translated to the
 * JavaScript client (test/ops/runbook.ts); where the CLI is installed it is run as well. A
 * command on the page that this file does not run fails the last test.
 */
import { jetstream, jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadWorkerConfig } from '../../actors/config.ts';
import { runWorker, type RunningWorker } from '../../actors/main.ts';
import {
  ActorKinds,
  IngressSources,
  PARTITIONS,
  SessionChanged,
  SessionStart,
  Streams,
  allStreams,
  cmdSubject,
  ensureTopology,
  ingressConsumerName,
  partitionConsumerName,
  partitionOf,
  partitionWindow,
  ACK_WAIT_MS,
  RAZORPAY_EFFECTS_CONSUMER,
  RAZORPAY_INGRESS_CONSUMER,
  TELEGRAM_OUT_CONSUMER,
} from '../../contracts/index.ts';
import { readRepo } from '../deploy/support.ts';
import {
  connectPostgres,
  createTestDatabase,
  startNats,
  type NatsServerHandle,
  type TestDatabase,
} from '../harness/index.ts';
import { eventually, quietLog } from '../support/runtime-env.ts';
import {
  loadRunbook,
  natsCliAvailable,
  natsConsumerInfo,
  natsConsumerReport,
  natsPub,
  natsStreamGetLastFor,
  natsStreamInfo,
  natsStreamLs,
  natsStreamView,
  natsSub,
  runNatsCli,
  runNpm,
  runbookCommands,
  shellWords,
  type RunbookCommand,
  type Watch,
} from './runbook.ts';

const PLAYER = '42';
const RUNBOOK = loadRunbook();
const executed = new Set<RunbookCommand>();
const CLI = natsCliAvailable();

/** A literal word, or a captured argument. */
const ARG = Symbol('arg');
type Pattern = readonly (string | typeof ARG)[];

function matches(argv: readonly string[], pattern: Pattern): boolean {
  return argv.length === pattern.length && pattern.every((p, i) => p === ARG || p === argv[i]);
}

/**
 * The page's command of this shape for which `pick` holds, marked as run; its captured
 * arguments, with `<placeholders>` replaced by `vars`. Fails when the page has no such command.
 */
function take(
  pattern: Pattern,
  pick: (args: string[]) => boolean = () => true,
  vars: Record<string, string> = {},
): { cmd: RunbookCommand; args: string[]; argv: string[] } {
  const capture = (argv: string[]): string[] => argv.filter((_, i) => pattern[i] === ARG);
  const cmd = RUNBOOK.find((c) => matches(c.argv, pattern) && pick(capture(c.argv)));
  if (cmd === undefined) {
    throw new Error(
      `docs/operations.md has no command like: ${pattern.map((p) => (p === ARG ? '…' : p)).join(' ')}`,
    );
  }
  const argv = cmd.argv.map((a) =>
    a.replace(/<(\w+)>/g, (whole, name: string) => {
      const v = vars[name];
      if (v === undefined) throw new Error(`no value for ${whole} in: ${cmd.text}`);
      return v;
    }),
  );
  executed.add(cmd);
  return { cmd, args: capture(argv), argv };
}

let nats: NatsServerHandle;
let database: TestDatabase;
let nc: NatsConnection;
let jsm: JetStreamManager;
let worker: RunningWorker | undefined;
const watches = new Map<string, Watch>();

/** The CLI, when installed, must accept the command too. */
function alsoWithCli(argv: readonly string[]): void {
  if (!CLI) return;
  const r = runNatsCli(nats.url, argv.slice(1));
  expect(r.status, `${argv.join(' ')}\n${r.out}`).toBe(0);
}

/** An actor's state as the runtime stored it. */
async function actorState<T>(actor: string, key: string): Promise<T | undefined> {
  const pg = await connectPostgres(database.url);
  try {
    const r = await pg.query('select state from rt_state where actor = $1 and key = $2', [
      actor,
      key,
    ]);
    return (r.rows[0] as { state: T } | undefined)?.state;
  } finally {
    await pg.end();
  }
}

const watch = (subject: string): Watch => {
  const w = watches.get(subject);
  if (w === undefined) throw new Error(`no live view of ${subject} opened`);
  return w;
};
const seenOn = (w: Watch, subject: string): string[] =>
  w.seen.filter((s) => s.subject === subject).map((s) => s.data);

beforeAll(async () => {
  nats = await startNats();
  database = await createTestDatabase();
  nc = await connect({ servers: nats.url });
  jsm = await jetstreamManager(nc);
  // What the worker converges at start, done first so the backlog is visible before it runs.
  await ensureTopology(jsm, { consumersFor: [ActorKinds.session] });
});

afterAll(async () => {
  for (const w of watches.values()) w.stop();
  await worker?.stop();
  await nc?.close();
  await database?.drop();
  await nats?.stop();
});

describe('docs/operations.md, parsed', () => {
  it('splits commands as a shell does: quotes, continuations, comments', () => {
    expect(shellWords(`nats sub 'respawn.session.42.>'   # live`)).toEqual([
      'nats',
      'sub',
      'respawn.session.42.>',
    ]);
    expect(shellWords(`nats pub a.b "{\\"x\\":1}" '# not a comment'`)).toEqual([
      'nats',
      'pub',
      'a.b',
      '{"x":1}',
      '# not a comment',
    ]);
    const md = '## S\n\n```sh\nnats pub a \\\n  \'{"a": 1}\'  # why\n```\n\n```json\n{}\n```\n';
    expect(runbookCommands(md)).toEqual([
      { text: 'nats pub a {"a": 1}', argv: ['nats', 'pub', 'a', '{"a": 1}'], section: 'S' },
    ]);
  });

  it('has the sections the issue asks for, each with commands', () => {
    const sections = new Set(RUNBOOK.map((c) => c.section));
    for (const s of [
      'Watch one player live',
      "Read a stream's history",
      'Inspect consumers and their lag',
      "Stop a player's session",
      'Dead letters',
    ]) {
      expect(sections, s).toContain(s);
    }
  });
});

describe('the runbook, run against a server and a worker', () => {
  it('watches one player live: commands (with their partition) and events', async () => {
    for (const pattern of [
      (a: string[]) => a[0] === `respawn.session.${PLAYER}.>`,
      (a: string[]) => a[0] === `respawn.*.${PLAYER}.>`,
      (a: string[]) => a[0] === 'respawn.dlq.>',
    ]) {
      const { args } = take(['nats', 'sub', ARG], pattern);
      watches.set(args[0]!, natsSub(nc, args[0]!));
    }
    await nc.flush();
    // The player presses Play while no worker runs (what the gateway's router would publish).
    await jetstream(nc).publish(
      cmdSubject(ActorKinds.session, PLAYER, 'start'),
      SessionStart.encode({ requestedBy: 'player' }),
    );
    // The page says player 42 is in partition 3; the live view shows it as the last token.
    expect(partitionOf(PLAYER)).toBe(3);
    const stored = `respawn.session.${PLAYER}.cmd.start.3`;
    await eventually('the live views show the start command', () =>
      Promise.resolve(
        seenOn(watch(`respawn.session.${PLAYER}.>`), stored).length === 1 &&
          seenOn(watch(`respawn.*.${PLAYER}.>`), stored).length === 1,
      ),
    );
  });

  it('shows the backlog of a partition nobody handles: stream ls, consumer report and info', async () => {
    const ls = take(['nats', 'stream', 'ls']);
    alsoWithCli(ls.argv);
    const streams = await natsStreamLs(nc);
    expect(streams.map((s) => s.name)).toEqual(
      allStreams()
        .map((d) => d.name)
        .sort(),
    );
    expect(streams.find((s) => s.name === 'RESPAWN_SESSION_CMD')?.messages).toBe(1);

    const report = take(['nats', 'consumer', 'report', ARG], (a) => a[0] === 'RESPAWN_SESSION_CMD');
    alsoWithCli(report.argv);
    const rows = await natsConsumerReport(nc, report.args[0]!);
    expect(rows.map((r) => r.name)).toEqual(
      Array.from({ length: PARTITIONS }, (_, p) => partitionConsumerName(ActorKinds.session, p)),
    );
    // As the page says: a window of 32 per session partition, redelivered after 3 s.
    expect(new Set(rows.map((r) => r.maxAckPending))).toEqual(
      new Set([partitionWindow('session')]),
    );
    expect(partitionWindow('session')).toBe(32);
    expect(new Set(rows.map((r) => r.ackWaitMs))).toEqual(new Set([ACK_WAIT_MS]));
    expect(ACK_WAIT_MS).toBe(3_000);
    expect(rows.filter((r) => r.unprocessed > 0).map((r) => [r.name, r.unprocessed])).toEqual([
      ['session-p03', 1],
    ]);

    const info = take(
      ['nats', 'consumer', 'info', ARG, ARG],
      (a) => a[0] === 'RESPAWN_SESSION_CMD',
    );
    expect(info.args[1]).toBe(partitionConsumerName(ActorKinds.session, partitionOf(PLAYER)));
    alsoWithCli(info.argv);
    const ci = await natsConsumerInfo(nc, info.args[0]!, info.args[1]!);
    expect([ci.unprocessed, ci.ackPending, ci.ackFloorStreamSeq]).toEqual([1, 0, 0]);
  });

  it('sees the backlog drain once a worker runs, and the player’s events live', async () => {
    worker = await runWorker(
      loadWorkerConfig({
        NATS_URL: nats.url,
        DATABASE_URL: database.url,
        RESPAWN_ACTORS: 'session,alloc',
        RESPAWN_SESSION_ADMISSION: 'false',
        RESPAWN_HTTP_PORT: '0',
      }),
      quietLog(),
    );
    const info = take(
      ['nats', 'consumer', 'info', ARG, ARG],
      (a) => a[0] === 'RESPAWN_SESSION_CMD',
    );
    await eventually('partition 3 has no backlog', async () => {
      const ci = await natsConsumerInfo(nc, info.args[0]!, info.args[1]!);
      return ci.unprocessed === 0 && ci.ackPending === 0 && ci.ackFloorStreamSeq === 1;
    });
    const evt = `respawn.session.${PLAYER}.evt.starting`;
    await eventually('the live view shows evt.starting', () =>
      Promise.resolve(seenOn(watch(`respawn.session.${PLAYER}.>`), evt).length === 1),
    );
    const [data] = seenOn(watch(`respawn.session.${PLAYER}.>`), evt);
    expect(SessionChanged.decode(new TextEncoder().encode(data))).toMatchObject({
      phase: 'starting',
      previous: 'idle',
    });
  });

  it('stops the player’s session with the published command; the actor answers', async () => {
    const pub = take(
      ['nats', 'pub', ARG, ARG],
      (a) => a[0] === `respawn.session.${PLAYER}.cmd.stop`,
    );
    if (CLI) alsoWithCli(pub.argv);
    else await natsPub(nc, pub.args[0]!, pub.args[1]!);
    const stopping = `respawn.session.${PLAYER}.evt.stopping`;
    await eventually('the live views show evt.stopping', () =>
      Promise.resolve(
        seenOn(watch(`respawn.session.${PLAYER}.>`), stopping).length === 1 &&
          seenOn(watch(`respawn.*.${PLAYER}.>`), stopping).length === 1,
      ),
    );
    const [data] = seenOn(watch(`respawn.session.${PLAYER}.>`), stopping);
    expect(SessionChanged.decode(new TextEncoder().encode(data))).toMatchObject({
      phase: 'stopping',
      previous: 'starting',
      reason: 'operator',
    });
    // The command itself went through the mapping to the player's partition.
    expect(
      seenOn(watch(`respawn.session.${PLAYER}.>`), `respawn.session.${PLAYER}.cmd.stop.3`),
    ).toEqual([pub.args[1]]);
    // … and the actor asked the allocator to release the VM, as the page says.
    const region = 'centralindia';
    const release = `${cmdSubject(ActorKinds.alloc, region, 'release')}.${partitionOf(region)}`;
    await eventually('an alloc release is stored', async () => {
      const m = await jsm.streams
        .getMessage(`RESPAWN_ALLOC_CMD`, { last_by_subj: release })
        .catch(() => null);
      return m !== null && m.string().includes(`"playerId":"${PLAYER}"`);
    });
  });

  it('drains a region: a new start is refused with the reason, then undrained', async () => {
    const region = 'centralindia';
    const live = take(['nats', 'sub', ARG], (a) => a[0] === `respawn.alloc.${region}.evt.>`);
    watches.set(live.args[0]!, natsSub(nc, live.args[0]!));
    await nc.flush();
    const drain = take(
      ['nats', 'pub', ARG, ARG],
      (a) => a[0] === `respawn.alloc.${region}.cmd.drain` && a[1]!.includes('"draining":true'),
    );
    if (CLI) alsoWithCli(drain.argv);
    else await natsPub(nc, drain.args[0]!, drain.args[1]!);
    // Another player presses Play in the drained region.
    const other = 'drain-7';
    await jetstream(nc).publish(
      cmdSubject(ActorKinds.session, other, 'start'),
      SessionStart.encode({ requestedBy: 'player' }),
    );
    await eventually('the refusal shows live as evt.failed', () =>
      Promise.resolve(
        seenOn(watch(live.args[0]!), `respawn.alloc.${region}.evt.failed`).some((d) =>
          d.includes('region draining: maintenance until 18:00 UTC'),
        ),
      ),
    );
    // The player's session went back to idle (through stopping) rather than waiting.
    await eventually('the session is idle again', async () => {
      const state = await actorState<{ phase: string }>('session', other);
      return state?.phase === 'idle';
    });
    const undrain = take(
      ['nats', 'pub', ARG, ARG],
      (a) => a[0] === `respawn.alloc.${region}.cmd.drain` && a[1]!.includes('"draining":false'),
    );
    if (CLI) alsoWithCli(undrain.argv);
    else await natsPub(nc, undrain.args[0]!, undrain.args[1]!);
    await eventually('the allocator is no longer draining', async () => {
      const state = await actorState<{ draining?: unknown }>('alloc', region);
      return state !== undefined && state.draining === undefined;
    });
  });

  it('reads the player’s history: stream view, stream get --last-for, stream info', async () => {
    const view = take(['nats', 'stream', 'view', ARG, '--subject', ARG]);
    alsoWithCli(view.argv);
    const history = await natsStreamView(nc, view.args[0]!, view.args[1]!);
    // With the allocator running, the stop completes: the VM (none yet) is released, idle.
    expect(history.map((m) => m.subject)).toEqual([
      `respawn.session.${PLAYER}.evt.starting`,
      `respawn.session.${PLAYER}.evt.stopping`,
      `respawn.session.${PLAYER}.evt.idle`,
    ]);

    const get = take(['nats', 'stream', 'get', ARG, '--last-for', ARG]);
    alsoWithCli(get.argv);
    const last = await natsStreamGetLastFor(nc, get.args[0]!, get.args[1]!);
    expect(last?.seq).toBe(history[1]?.seq);
    expect(SessionChanged.decode(new TextEncoder().encode(last?.data))).toMatchObject({
      reason: 'operator',
    });

    const info = take(['nats', 'stream', 'info', ARG], (a) => a[0] === 'RESPAWN_SESSION_CMD');
    alsoWithCli(info.argv);
    const si = await natsStreamInfo(nc, info.args[0]!);
    // Player 42's start, stop and vm_released, and the drained player's commands: none lost.
    expect(si.state.first_seq).toBe(1);
    expect(si.state.messages).toBe(si.state.last_seq);
    expect(si.state.messages).toBeGreaterThanOrEqual(3);
  });

  it('lists dead letters, re-injects one on its original subject, and only once', async () => {
    // Another service publishes garbage for the player: it is dead-lettered, never dropped.
    await natsPub(nc, cmdSubject(ActorKinds.session, PLAYER, 'stop'), 'stop it now');
    const dlq = watch('respawn.dlq.>');
    await eventually('the live DLQ view shows the dead letter', () =>
      Promise.resolve(seenOn(dlq, 'respawn.dlq.session.invalid_json').length === 1),
    );

    const list = take(['npm', 'run', 'dlq', '--', 'list', '--prefix', ARG]);
    expect(list.args[0]).toBe('respawn.dlq.session');
    const listed = await runNpm(list.argv, nats.url);
    expect(listed.code, listed.stderr).toBe(0);
    const rows = listed.stdout
      .split('\n')
      .map((l) => l.split('\t'))
      .filter((cols) => cols.length === 5);
    expect(rows.map((r) => [r[2], r[3]])).toEqual([
      ['invalid_json', `respawn.session.${PLAYER}.cmd.stop.3`],
    ]);
    expect(listed.stdout).toContain('1 dead letter(s)');
    const seq = rows[0]![0]!;

    const reinject = take(['npm', 'run', 'dlq', '--', 'reinject', ARG], () => true, { seq });
    const first = await runNpm(reinject.argv, nats.url);
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toContain(`${seq} -> respawn.session.${PLAYER}.cmd.stop\n`);
    // It is delivered again on its original subject (still garbage: dead-lettered again).
    await eventually('the re-injected command reaches the actor again', () =>
      Promise.resolve(
        seenOn(watch(`respawn.session.${PLAYER}.>`), `respawn.session.${PLAYER}.cmd.stop.3`).filter(
          (d) => d === 'stop it now',
        ).length === 2 && seenOn(dlq, 'respawn.dlq.session.invalid_json').length === 2,
      ),
    );
    const second = await runNpm(reinject.argv, nats.url);
    expect(second.code, second.stderr).toBe(0);
    expect(second.stdout).toContain(
      `${seq} -> respawn.session.${PLAYER}.cmd.stop (already re-injected)`,
    );
    expect((await jsm.streams.info(Streams.dlq.name)).state.messages).toBe(2);
  });

  it('ran every command the page shows (a new one fails here until this file runs it)', () => {
    expect(RUNBOOK.length).toBeGreaterThan(0);
    expect(RUNBOOK.filter((c) => !executed.has(c)).map((c) => c.text)).toEqual([]);
  });
});

describe('docs/operations.md tables, against contracts/', () => {
  const md = readRepo('docs/operations.md');
  /** The rows of the markdown table under `## <title>`. */
  const table = (title: string): string[][] => {
    const body = md.split(`## ${title}\n`)[1]?.split('\n## ')[0] ?? '';
    return body
      .split('\n')
      .filter((l) => l.startsWith('|') && !/^\|[\s-|]+\|$/.test(l))
      .slice(1)
      .map((l) =>
        l
          .split('|')
          .slice(1, -1)
          .map((c) => c.trim()),
      );
  };
  const codes = (cell: string): string[] => [...cell.matchAll(/`([^`]+)`/g)].map((m) => m[1]!);

  it('lists every stream with its subjects and retention', () => {
    const rows = table('What each stream is for');
    expect(rows.map((r) => codes(r[0]!)[0]).sort()).toEqual(
      allStreams()
        .map((d) => d.name)
        .sort(),
    );
    for (const def of allStreams()) {
      const r = rows.find((x) => codes(x[0]!)[0] === def.name)!;
      const range = `<0-${PARTITIONS - 1}>`;
      const subjects = codes(r[1]!)
        .flatMap((s) =>
          s.includes('<kind>') ? Object.values(ActorKinds).map((k) => s.replace('<kind>', k)) : [s],
        )
        .flatMap((s) =>
          s.includes(range)
            ? Array.from({ length: PARTITIONS }, (_, i) => s.replace(range, String(i)))
            : [s],
        );
      expect(subjects.sort(), def.name).toEqual([...def.subjects].sort());
      const days = Number(/(\d+) days/.exec(r[2]!)?.[1]);
      expect(days * 24 * 3600 * 1000, def.name).toBe(def.maxAgeMs);
    }
  });

  it('lists every durable consumer Respawn creates', () => {
    const names = table('What each consumer is for').flatMap((r) => codes(r[0]!));
    expect(names).toContain('<kind>-p00');
    expect(names).toContain(`<kind>-p${PARTITIONS - 1}`);
    expect(partitionConsumerName(ActorKinds.session, 0)).toBe('session-p00');
    for (const source of Object.values(IngressSources))
      expect(names).toContain(ingressConsumerName(source));
    expect(names).toContain(RAZORPAY_INGRESS_CONSUMER);
    expect(names).toContain(TELEGRAM_OUT_CONSUMER);
    expect(names).toContain(RAZORPAY_EFFECTS_CONSUMER);
    expect(names).toContain('azure-<region>');
    expect(readRepo('actors/allocator/effects.ts')).toContain('`azure-${config.region}`');
    expect(names.length).toBe(8);
  });

  it('names the drain command the allocator really handles', () => {
    expect(md).toContain('## Drain a region');
    expect(readRepo('contracts/allocator.ts')).toContain("'alloc.drain.v1'");
  });
});
