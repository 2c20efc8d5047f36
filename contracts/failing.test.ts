import { Writable } from 'node:stream';
import { pino } from 'pino';
import { expect, it } from 'vitest';
import { failureLog } from './failing.ts';

function capture() {
  const lines: { level: number; msg: string; failures?: number; err?: { message: string } }[] = [];
  const log = pino(
    { level: 'debug' },
    new Writable({
      write(chunk: Buffer, _enc, cb) {
        for (const l of chunk.toString().split('\n').filter(Boolean)) {
          lines.push(JSON.parse(l) as (typeof lines)[number]);
        }
        cb();
      },
    }),
  );
  return { log, lines };
}

it('logs the first failure of a run, then at most one "still failing" per interval, then the recovery', () => {
  const { log, lines } = capture();
  let t = 1_000;
  const f = failureLog(log, 'timer sweep', () => t, 30_000);
  f.ok(); // nothing failed yet: nothing to say
  for (let i = 0; i < 150; i++) {
    f.failed(new Error('connect ECONNREFUSED'));
    t += 500; // a round every 500 ms for 75 s
  }
  f.ok();
  f.ok();
  expect(lines.map((l) => [l.msg, l.failures])).toEqual([
    ['timer sweep failed', undefined],
    ['timer sweep still failing', 61],
    ['timer sweep still failing', 121],
    ['timer sweep works again', 150],
  ]);
  expect(lines[0]!.err?.message).toBe('connect ECONNREFUSED');
  expect(lines.slice(0, 3).every((l) => l.level === 40)).toBe(true);
  expect(lines[3]!.level).toBe(30);
});

it('starts a new run after a recovery: its first failure is logged at once', () => {
  const { log, lines } = capture();
  let t = 0;
  const f = failureLog(log, 'parking drain', () => t);
  f.failed(new Error('a'));
  t += 100;
  f.ok();
  t += 100;
  f.failed(new Error('b'));
  f.failed(new Error('c'));
  expect(lines.map((l) => l.msg)).toEqual([
    'parking drain failed',
    'parking drain works again',
    'parking drain failed',
  ]);
  expect(lines[2]!.err?.message).toBe('b');
});
