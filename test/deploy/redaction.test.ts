/**
 * Secrets never reach the logs: the real root loggers of the gateway (createGatewayLogger)
 * and of a worker (createRootLogger) log objects holding the bot token, the Telegram and
 * Razorpay webhook secrets, the Razorpay key secret, the Azure client secret, the agents'
 * master secret and a DATABASE_URL with a password, in a child process writing to its
 * stdout as production does; the captured output is then searched for each secret.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { beforeAll, describe, expect, it } from 'vitest';
import { LOGGERS, SECRETS, probeId, shapesOf, type LoggerName } from './fixtures/secrets.ts';
import { ROOT } from './support.ts';

const run = promisify(execFile);

/** Captured log lines by probe id. */
let lines: Map<string, string>;

beforeAll(async () => {
  const { stdout } = await run(
    process.execPath,
    ['--import', 'tsx', 'test/deploy/fixtures/log-secrets.ts'],
    {
      cwd: ROOT,
      maxBuffer: 8 * 1024 * 1024,
    },
  );
  lines = new Map();
  for (const line of stdout.split('\n').filter((l) => l.trim() !== '')) {
    const probe = (JSON.parse(line) as { probe?: unknown }).probe;
    if (typeof probe === 'string') lines.set(probe, line);
  }
});

const cases = LOGGERS.flatMap((logger) => SECRETS.map((s) => [logger, s.variable] as const));

describe('log redaction', () => {
  it('captured one JSON line per probe (the search below is not vacuous)', () => {
    const expected = LOGGERS.flatMap((l) =>
      SECRETS.flatMap((s) =>
        Object.keys(shapesOf(s)).map((shape) => probeId(l, s.variable, shape)),
      ),
    );
    expect([...lines.keys()].sort()).toEqual(expected.sort());
  });

  it.each(cases)('the %s logger never writes %s', (logger: LoggerName, variable: string) => {
    const secret = SECRETS.find((s) => s.variable === variable)!;
    const leaks = Object.keys(shapesOf(secret))
      .map((shape) => ({ shape, line: lines.get(probeId(logger, variable, shape)) ?? '' }))
      .filter(({ line }) => line.includes(secret.needle))
      .map(
        ({ shape }) =>
          `  logged as ${shape}: ${JSON.stringify(shapesOf(secret)[shape]).replace(secret.needle, '<SECRET>')}`,
      );
    expect(
      leaks,
      `${variable} leaks through the ${logger} logger (${logger === 'gateway' ? 'gateway/log.ts' : 'actors/log.ts'} REDACT_PATHS):\n${leaks.join('\n')}`,
    ).toEqual([]);
  });
});
