import type { JsMsg } from '@nats-io/jetstream';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ErrorCodes, RespawnError, RetryableError, TerminalError } from '../../contracts/index.ts';
import { backoffDelay, settle, type Backoff } from './settle.ts';
import { StaleStateError, classify, type Outcome } from './store.ts';

const B: Backoff = { baseMs: 100, maxMs: 1_000_000 };

/** Pins Math.random so the jitter is known: 0 is the floor (exp/2), just under 1 the top (exp). */
function withRandom(r: number): void {
  vi.spyOn(Math, 'random').mockReturnValue(r);
}

afterEach(() => {
  vi.restoreAllMocks();
});

describe('backoffDelay', () => {
  it('doubles with every redelivery (fixed jitter)', () => {
    withRandom(0.5);
    const delays = Array.from({ length: 10 }, (_, r) => backoffDelay(r, B));
    expect(delays).toEqual(Array.from({ length: 10 }, (_, r) => 75 * 2 ** r));
  });

  it('is exp/2 at the bottom of the jitter and exp at the top', () => {
    for (const r of [0, 1, 5, 12]) {
      const exp = B.baseMs * 2 ** r;
      withRandom(0);
      expect(backoffDelay(r, B)).toBe(exp / 2);
      withRandom(0.999999999);
      expect(backoffDelay(r, B)).toBe(exp);
    }
  });

  it('stays within [exp/2, exp] with real randomness', () => {
    for (let r = 0; r <= 12; r++) {
      const exp = B.baseMs * 2 ** r;
      for (let i = 0; i < 200; i++) {
        const d = backoffDelay(r, B);
        expect(d).toBeGreaterThanOrEqual(exp / 2);
        expect(d).toBeLessThanOrEqual(exp);
      }
    }
  });

  it('jitters: delays for one redelivery count are not all equal', () => {
    const delays = new Set(Array.from({ length: 50 }, () => backoffDelay(6, B)));
    expect(delays.size).toBeGreaterThan(1);
  });

  it('caps at maxMs, jitter included', () => {
    const capped: Backoff = { baseMs: 100, maxMs: 5_000 };
    withRandom(0.999999999);
    expect(backoffDelay(5, capped)).toBe(3_200);
    expect(backoffDelay(6, capped)).toBe(5_000);
    expect(backoffDelay(50, capped)).toBe(5_000);
    withRandom(0);
    expect(backoffDelay(50, capped)).toBe(2_500);
    vi.restoreAllMocks();
    for (let i = 0; i < 200; i++) expect(backoffDelay(10 + i, capped)).toBeLessThanOrEqual(5_000);
  });

  it('stays finite for absurd redelivery counts', () => {
    withRandom(0.999999999);
    const d = backoffDelay(1_000_000, { baseMs: 100, maxMs: Number.MAX_SAFE_INTEGER });
    expect(Number.isFinite(d)).toBe(true);
    expect(d).toBe(100 * 2 ** 20);
  });
});

describe('classify', () => {
  it('turns a TerminalError into a dead letter with its own data', () => {
    const err = new TerminalError(ErrorCodes.rejected, 'no');
    expect(classify(err, 0, 10)).toStrictEqual({
      kind: 'dead',
      error: { code: 'rejected', message: 'no', retryable: false },
    });
  });

  it('keeps a TerminalError’s own code even on the last attempt', () => {
    const err = new TerminalError(ErrorCodes.invalidPayload, 'bad');
    expect(classify(err, 9, 10)).toStrictEqual({ kind: 'dead', error: err.toData() });
  });

  it('dead-letters any non-retryable RespawnError, not only a TerminalError', () => {
    const err = new RespawnError(ErrorCodes.handlerBug, 'broken', { retryable: false });
    expect(classify(err, 0, 10)).toStrictEqual({
      kind: 'dead',
      error: { code: 'handler_bug', message: 'broken', retryable: false },
    });
  });

  it('retries a RetryableError with its delayMs', () => {
    const err = new RetryableError(ErrorCodes.unavailable, 'later', { delayMs: 250 });
    expect(classify(err, 0, 10)).toStrictEqual({
      kind: 'retry',
      error: { code: 'unavailable', message: 'later', retryable: true },
      delayMs: 250,
    });
  });

  it('retries a RetryableError without delayMs with an undefined delay (backoff decides)', () => {
    const o = classify(new StaleStateError(['demo/k']), 3, 10);
    expect(o).toStrictEqual({
      kind: 'retry',
      error: {
        code: ErrorCodes.staleState,
        message: 'state of demo/k was changed by another writer',
        retryable: true,
      },
      delayMs: undefined,
    });
  });

  it('retries a retryable RespawnError that is not a RetryableError, with no delay', () => {
    const err = new RespawnError(ErrorCodes.unavailable, 'x', { retryable: true });
    expect(classify(err, 0, 10)).toStrictEqual({
      kind: 'retry',
      error: { code: 'unavailable', message: 'x', retryable: true },
      delayMs: undefined,
    });
  });

  it('retries an unknown Error as unavailable with its message', () => {
    expect(classify(new TypeError('cannot read x of undefined'), 0, 10)).toStrictEqual({
      kind: 'retry',
      error: { code: 'unavailable', message: 'cannot read x of undefined', retryable: true },
      delayMs: undefined,
    });
  });

  it('retries a thrown non-Error as unavailable with its string form', () => {
    expect(classify('boom', 0, 10)).toStrictEqual({
      kind: 'retry',
      error: { code: 'unavailable', message: 'boom', retryable: true },
      delayMs: undefined,
    });
  });

  it.each([
    ['RetryableError', new RetryableError(ErrorCodes.unavailable, 'db down', { delayMs: 5 })],
    ['unknown Error', new Error('db down')],
  ])('dead-letters a retryable %s once redeliveries + 1 >= maxAttempts', (_what, err) => {
    expect(classify(err, 8, 10).kind).toBe('retry');
    for (const redeliveries of [9, 10, 50]) {
      const o: Outcome = classify(err, redeliveries, 10);
      expect(o).toStrictEqual({
        kind: 'dead',
        error: {
          code: ErrorCodes.attemptsExhausted,
          message: `gave up after ${redeliveries + 1} attempts: unavailable: db down`,
          retryable: false,
        },
      });
    }
  });

  it('with maxAttempts 1 dead-letters the first retryable failure', () => {
    const o = classify(new Error('x'), 0, 1);
    expect(o.kind).toBe('dead');
    expect(o.kind === 'dead' && o.error.code).toBe(ErrorCodes.attemptsExhausted);
  });
});

describe('settle', () => {
  interface Calls {
    ack: number;
    term: number;
    nak: (number | undefined)[];
  }

  function fakeMsg(deliveryCount: number): { m: JsMsg; calls: Calls } {
    const calls: Calls = { ack: 0, term: 0, nak: [] };
    const m = {
      info: { deliveryCount },
      ack: () => {
        calls.ack++;
      },
      term: () => {
        calls.term++;
      },
      nak: (delay?: number) => {
        calls.nak.push(delay);
      },
    };
    return { m: m as unknown as JsMsg, calls };
  }

  const err = { code: ErrorCodes.unavailable, message: 'x', retryable: true };

  it.each<Outcome>([{ kind: 'ok' }, { kind: 'duplicate' }, { kind: 'stale_timer' }])(
    'acks a $kind outcome',
    (o) => {
      const { m, calls } = fakeMsg(1);
      settle(m, o, B);
      expect(calls).toEqual({ ack: 1, term: 0, nak: [] });
    },
  );

  it('terms a dead outcome', () => {
    const { m, calls } = fakeMsg(1);
    settle(m, { kind: 'dead', error: { ...err, retryable: false } }, B);
    expect(calls).toEqual({ ack: 0, term: 1, nak: [] });
  });

  it('naks a retry with the error’s own delay', () => {
    const { m, calls } = fakeMsg(4);
    settle(m, { kind: 'retry', error: err, delayMs: 1234 }, B);
    expect(calls).toEqual({ ack: 0, term: 0, nak: [1234] });
  });

  it('naks a retry without a delay with the backoff of its redelivery count', () => {
    withRandom(0);
    const { m, calls } = fakeMsg(4);
    settle(m, { kind: 'retry', error: err, delayMs: undefined }, B);
    // deliveryCount 4 = 3 redeliveries: exp = 100 * 2^3, floor of the jitter = 400.
    expect(calls).toEqual({ ack: 0, term: 0, nak: [400] });
  });
});
