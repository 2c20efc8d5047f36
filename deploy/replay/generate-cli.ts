/**
 * `generate` of `npm run replay -- generate …`: writes a synthetic recording. deploy/replay.ts
 * dispatches here with the arguments after `generate`; run directly with
 * `node --import tsx deploy/replay/generate-cli.ts --out day.jsonl`.
 */
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { pino, type Logger } from 'pino';
import { DEFAULT_FROM, defaultModel, generateRecording, type GenerateOptions } from './generate.ts';

export const GENERATE_USAGE = `Usage: npm run replay -- generate --out FILE [options]

Writes a respawn-recording/1 file of synthetic players (docs/load.md).

  --out FILE              where to write (required)
  --players N             players (default 10000)
  --hours H               simulated period (default 24)
  --from ISO              start of the period (default ${DEFAULT_FROM}, midnight IST)
  --seed N                seed; the same options and seed give the same bytes (default 1)
  --evictions-per-month X Spot evictions per VM per month the load run injects (default 2.5)
  --bad-rate X            injected bad inputs per session (default ${defaultModel.badInputRate})
  --double-click-rate X   (default ${defaultModel.doubleClickRate})
  --idle-rate X           share of players who never give input (default ${defaultModel.idlePlayerRate})
  --help                  this text
`;

const options = {
  out: { type: 'string' },
  players: { type: 'string' },
  hours: { type: 'string' },
  from: { type: 'string' },
  seed: { type: 'string' },
  'evictions-per-month': { type: 'string' },
  'bad-rate': { type: 'string' },
  'double-click-rate': { type: 'string' },
  'idle-rate': { type: 'string' },
  help: { type: 'boolean', default: false },
} as const;

class UsageError extends Error {}

function num(
  name: string,
  v: string | undefined,
  check: (n: number) => boolean,
): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isFinite(n) || !check(n))
    throw new UsageError(`--${name}: ${JSON.stringify(v)} is not valid`);
  return n;
}

/** Parses the arguments into generator options; throws a UsageError naming the bad one. */
export function parseGenerateArgs(
  argv: readonly string[],
): (GenerateOptions & { path: string }) | 'help' {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }));
  } catch (err) {
    throw new UsageError(err instanceof Error ? err.message : String(err));
  }
  if (values.help) return 'help';
  if (values.out === undefined) throw new UsageError('--out FILE is required');
  const rate = (n: number): boolean => n >= 0 && n <= 1;
  const o: GenerateOptions & { path: string } = { path: values.out };
  const set = <K extends keyof GenerateOptions>(k: K, v: GenerateOptions[K] | undefined): void => {
    if (v !== undefined) (o as GenerateOptions)[k] = v;
  };
  set(
    'players',
    num('players', values.players, (n) => Number.isInteger(n) && n > 0),
  );
  set(
    'hours',
    num('hours', values.hours, (n) => n >= 1),
  );
  set(
    'seed',
    num('seed', values.seed, (n) => Number.isInteger(n) && n >= 0),
  );
  set(
    'evictionsPerSpotVmMonth',
    num('evictions-per-month', values['evictions-per-month'], (n) => n >= 0),
  );
  set('badInputRate', num('bad-rate', values['bad-rate'], rate));
  set('doubleClickRate', num('double-click-rate', values['double-click-rate'], rate));
  set('idlePlayerRate', num('idle-rate', values['idle-rate'], rate));
  if (values.from !== undefined) {
    if (Number.isNaN(Date.parse(values.from)))
      throw new UsageError(`--from: ${values.from} is not an ISO-8601 time`);
    o.from = new Date(values.from).toISOString();
  }
  return o;
}

/** Runs the command; returns the exit code (0 done, 2 bad arguments, 1 failed). */
export async function main(
  argv: readonly string[],
  log: Logger = pino({ level: 'info' }, pino.destination(2)),
): Promise<number> {
  let parsed;
  try {
    parsed = parseGenerateArgs(argv);
  } catch (err) {
    if (!(err instanceof UsageError)) throw err;
    log.error({ error: err.message }, 'bad arguments');
    process.stderr.write(`${err.message}\n\n${GENERATE_USAGE}`);
    return 2;
  }
  if (parsed === 'help') {
    process.stdout.write(GENERATE_USAGE);
    return 0;
  }
  try {
    const t = performance.now();
    const r = await generateRecording(parsed);
    const ms = Math.round(performance.now() - t);
    log.info(
      { path: r.path, messages: r.count, bytes: r.bytes, bad: r.bad.length, ms },
      'recording generated',
    );
    process.stdout.write(
      `wrote ${r.path}: ${r.count} messages (${r.bad.length} injected bad inputs), ` +
        `${(r.bytes / 1e6).toFixed(1)} MB, ${r.header.from} → ${r.header.to}, in ${ms} ms\n`,
    );
    return 0;
  } catch (err) {
    log.error({ err }, 'generate failed');
    return 1;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  process.exitCode = await main(process.argv.slice(2));
}
