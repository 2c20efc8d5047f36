/**
 * `npm run replay -- …`: argument parsing and the two commands. Output: progress and errors
 * on stderr, the summary on stdout. Exit status 0 when everything was exported or replayed,
 * 1 when any message failed (each is reported with its line), 2 for a usage error.
 */
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import knex, { type Knex } from 'knex';
import { IngressSources, type IngressSource } from '../../contracts/index.ts';
import { natsReplayClock, type ReplayClock } from './clock.ts';
import { exportRecording } from './export.ts';
import { main as generateMain } from './generate-cli.ts';
import { deploymentIdleProbe } from './idle.ts';
import { parseSpeed, replay, type ReplaySpeed, type ReplayTarget } from './play.ts';
import { formatSummary, progressPrinter, type ProgressOutput } from './progress.ts';
import { RecordingError, openRecording } from './read.ts';

export const HELP = `Record and replay Respawn's ingress (docs/replay.md).

Usage:
  npm run replay -- export --nats URL --out FILE [--from TIME] [--to TIME]
                           [--source telegram,razorpay,agent]
  npm run replay -- play FILE --into stream --nats URL [options]
  npm run replay -- play FILE --into http --gateway URL [options]
  npm run replay -- generate --out FILE [--players N] [--hours H] [--seed S] …
                           (a synthetic workload; see: npm run replay -- generate --help)

export   Writes the messages RESPAWN_IN stored between --from (inclusive) and --to
         (exclusive; default: now) as a JSON-lines recording. TIME is ISO-8601
         (2026-01-05T18:00:00Z), "now", or an age: 90s, 30m, 2h, 7d (ago).
play     Replays a recording into a deployment:
  --into stream        publish to respawn.in.<source> with the recorded headers; the
                       recorded Nats-Msg-Id is kept, so a repeated replay is de-duplicated
  --into http          POST to the gateway's /telegram/webhook, /razorpay/webhook and
                       /agent/report, signed with the TARGET's secrets, read from the
                       environment: TELEGRAM_WEBHOOK_SECRET, RAZORPAY_WEBHOOK_SECRET,
                       AGENT_TOKEN_SECRET
  --speed S            original (default), Nx (e.g. 10x) or max
  --clock              move the target's replay clock (workers run RESPAWN_CLOCK=replay)
                       to each message's recorded time; needs --nats
  --step               reproducible outcome: per recorded time, move the clock, wait until
                       the deployment is idle, send, wait until idle; needs --nats, and
                       --database to also wait for the outbox, due timers and retries
  --database URL       the target's PostgreSQL (with --step)
  --idle-timeout S     longest wait for idle per step, seconds (default 120)
  --idle-ignore LIST   durable consumers not to wait for (STREAM/name or name, comma list)
  --nats URL           the target's NATS (stream target, --clock, --step)

Progress goes to stderr (a bar on a terminal, a line every 5 s otherwise), errors with
their line number; the summary to stdout. Exit status 1 if any message failed.
`;

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

const AGE = /^-?(\d+(?:\.\d+)?)(ms|s|m|h|d)$/;
const UNIT_MS: Record<string, number> = { ms: 1, s: 1e3, m: 60e3, h: 3600e3, d: 86400e3 };

/** ISO-8601, `now`, or an age before `now` (`30m`, `-2h`, `7d`). */
export function parseTime(text: string, now: Date = new Date()): Date {
  const s = text.trim();
  if (s === 'now') return now;
  const age = AGE.exec(s);
  if (age !== null) return new Date(now.getTime() - Number(age[1]) * UNIT_MS[age[2]!]!);
  if (/^\d{4}-\d{2}-\d{2}/.test(s)) {
    const t = Date.parse(s);
    if (Number.isFinite(t)) return new Date(t);
  }
  throw new UsageError(
    `"${text}" is not a time: use ISO-8601 (2026-01-05T18:00:00Z), "now", or an age like 30m, 2h, 7d`,
  );
}

export function parseSources(text: string): IngressSource[] {
  const all = Object.values(IngressSources) as string[];
  const list = text
    .split(',')
    .map((x) => x.trim())
    .filter((x) => x.length > 0);
  for (const s of list) {
    if (!all.includes(s)) throw new UsageError(`--source ${s}: must be one of ${all.join(', ')}`);
  }
  if (list.length === 0) throw new UsageError('--source names no source');
  return list as IngressSource[];
}

function need(value: string | undefined, what: string): string {
  if (value === undefined || value.length === 0) throw new UsageError(`${what} is required`);
  return value;
}

export interface CliIo {
  stdout: ProgressOutput;
  stderr: ProgressOutput;
  env: NodeJS.ProcessEnv;
  signal?: AbortSignal;
}

async function connectNats(url: string): Promise<NatsConnection> {
  try {
    return await connect({ servers: url, name: 'respawn-replay' });
  } catch (err) {
    throw new UsageError(
      `cannot connect to NATS at ${url}: ${err instanceof Error ? err.message : String(err)}`,
    );
  }
}

async function runExport(args: string[], io: CliIo): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      nats: { type: 'string' },
      out: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      source: { type: 'string' },
    },
    strict: true,
  });
  const out = need(values.out, '--out FILE');
  const from = values.from === undefined ? undefined : parseTime(values.from);
  const to = values.to === undefined ? new Date() : parseTime(values.to);
  const sources = values.source === undefined ? undefined : parseSources(values.source);
  const nc = await connectNats(need(values.nats, '--nats URL'));
  let skipped = 0;
  try {
    const r = await exportRecording({
      nc,
      out,
      to,
      ...(from === undefined ? {} : { from }),
      ...(sources === undefined ? {} : { sources }),
      onSkip: (seq, reason) => {
        skipped++;
        io.stderr.write(`skipped: stream seq ${seq}: ${reason}\n`);
      },
    });
    io.stdout.write(
      `exported ${r.exported} messages (stream seq ${r.firstSeq ?? '-'}..${r.lastSeq ?? '-'}, recorded ${r.header.from} .. ${r.header.to}) to ${out}\n`,
    );
    return skipped > 0 ? 1 : 0;
  } finally {
    await nc.close();
  }
}

function secretsFrom(env: NodeJS.ProcessEnv): {
  telegramSecretToken: string;
  razorpayWebhookSecret: string;
  agentMasterSecret: string;
} {
  const missing = [
    'TELEGRAM_WEBHOOK_SECRET',
    'RAZORPAY_WEBHOOK_SECRET',
    'AGENT_TOKEN_SECRET',
  ].filter((k) => (env[k] ?? '') === '');
  if (missing.length > 0) {
    throw new UsageError(
      `--into http signs with the target's secrets; set ${missing.join(', ')} in the environment`,
    );
  }
  return {
    telegramSecretToken: env.TELEGRAM_WEBHOOK_SECRET!,
    razorpayWebhookSecret: env.RAZORPAY_WEBHOOK_SECRET!,
    agentMasterSecret: env.AGENT_TOKEN_SECRET!,
  };
}

async function runPlay(args: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parseArgs({
    args,
    allowPositionals: true,
    options: {
      into: { type: 'string' },
      nats: { type: 'string' },
      gateway: { type: 'string' },
      speed: { type: 'string', default: 'original' },
      clock: { type: 'boolean', default: false },
      step: { type: 'boolean', default: false },
      database: { type: 'string' },
      'idle-timeout': { type: 'string', default: '120' },
      'idle-ignore': { type: 'string', default: '' },
    },
    strict: true,
  });
  if (positionals.length !== 1) throw new UsageError('play takes exactly one FILE');
  const file = positionals[0]!;
  const speed: ReplaySpeed | undefined = parseSpeed(values.speed);
  if (speed === undefined) {
    throw new UsageError(`--speed ${values.speed}: use original, max or a factor like 10x`);
  }
  const into = need(values.into, '--into stream|http');
  if (into !== 'stream' && into !== 'http') throw new UsageError('--into must be stream or http');
  const idleTimeoutS = Number(values['idle-timeout']);
  if (!Number.isFinite(idleTimeoutS) || idleTimeoutS <= 0) {
    throw new UsageError('--idle-timeout must be a positive number of seconds');
  }
  const wantsNats = into === 'stream' || values.clock || values.step;
  if (wantsNats && values.nats === undefined) {
    throw new UsageError('--nats URL is required with --into stream, --clock and --step');
  }
  if (values.database !== undefined && !values.step) {
    throw new UsageError('--database is used only with --step');
  }
  const secrets = into === 'http' ? secretsFrom(io.env) : undefined;
  const gateway = into === 'http' ? need(values.gateway, '--gateway URL') : undefined;
  if (gateway !== undefined && !URL.canParse(gateway)) {
    throw new UsageError(`--gateway ${gateway} is not a URL`);
  }

  const printer = progressPrinter(io.stderr);
  let badLines = 0;
  const recording = await openRecording(file, {
    onBadLine: (b) => {
      badLines++;
      printer.error(b);
    },
  });
  const nc = wantsNats ? await connectNats(values.nats!) : undefined;
  let db: Knex | undefined;
  try {
    const target: ReplayTarget =
      into === 'stream'
        ? { kind: 'stream', nc: nc! }
        : { kind: 'http', gatewayUrl: gateway!, secrets: secrets! };
    const clock: ReplayClock | undefined = values.clock ? await natsReplayClock(nc!) : undefined;
    if (values.step && values.database !== undefined) {
      db = knex({ client: 'pg', connection: values.database, pool: { min: 0, max: 2 } });
    }
    const ignore = values['idle-ignore']
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x.length > 0);
    const summary = await replay({
      target,
      speed,
      messages: recording.messages,
      total: recording.count,
      ...(clock === undefined ? {} : { clock }),
      ...(values.step
        ? {
            step: {
              idle: deploymentIdleProbe({
                jsm: await jetstreamManager(nc!),
                ...(db === undefined ? {} : { knex: db }),
                ignore,
              }),
              timeoutMs: idleTimeoutS * 1000,
            },
          }
        : {}),
      onProgress: (p) => printer.progress({ ...p, errors: p.errors + badLines }),
      onError: (e) => printer.error(e),
      ...(io.signal === undefined ? {} : { signal: io.signal }),
    });
    printer.finish();
    io.stdout.write(`${formatSummary(summary, badLines)}\n`);
    return summary.errors + badLines > 0 ? 1 : 0;
  } finally {
    await db?.destroy();
    await nc?.close();
  }
}

/** Runs one command line; never throws (a usage or setup error is printed, status 2). */
export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case 'help':
      case '--help':
      case '-h':
        io.stdout.write(HELP);
        return command === undefined ? 2 : 0;
      case 'export':
        if (rest.includes('--help')) {
          io.stdout.write(HELP);
          return 0;
        }
        return await runExport(rest, io);
      case 'play':
        if (rest.includes('--help')) {
          io.stdout.write(HELP);
          return 0;
        }
        return await runPlay(rest, io);
      case 'generate':
        return await generateMain(rest);
      default:
        throw new UsageError(`unknown command "${command}"`);
    }
  } catch (err) {
    const usage =
      err instanceof UsageError ||
      err instanceof RecordingError ||
      (err instanceof TypeError && 'code' in err && String(err.code).startsWith('ERR_PARSE_ARGS'));
    const message = err instanceof Error ? err.message : String(err);
    io.stderr.write(`replay: ${message}\n${usage ? 'See: npm run replay -- --help\n' : ''}`);
    return usage ? 2 : 1;
  }
}
