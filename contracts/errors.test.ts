import { describe, expect, it } from 'vitest';
import { ErrorCodes, RespawnError, RetryableError, TerminalError } from './errors.ts';

describe('ErrorCodes', () => {
  const values: string[] = Object.values(ErrorCodes);

  it('has no two names for the same code', () => {
    expect(new Set(values).size).toBe(values.length);
  });

  it.each(values)('%s is snake_case', (code) => {
    expect(code).toMatch(/^[a-z]+(_[a-z]+)*$/);
  });

  it('is the documented catalogue', () => {
    expect([...values].sort()).toEqual([
      'attempts_exhausted',
      'bad_subject',
      'handler_bug',
      'invalid_json',
      'invalid_payload',
      'payload_too_large',
      'razorpay_error',
      'rejected',
      'stale_state',
      'unavailable',
      'unknown_type',
      'unroutable',
      'wrong_partition',
    ]);
  });
});

describe('TerminalError', () => {
  it('is a non-retryable RespawnError with its code, message and name', () => {
    const err = new TerminalError(ErrorCodes.rejected, 'no such plan');
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(RespawnError);
    expect(err).not.toBeInstanceOf(RetryableError);
    expect(err.retryable).toBe(false);
    expect(err.code).toBe('rejected');
    expect(err.message).toBe('no such plan');
    expect(err.name).toBe('TerminalError');
  });

  it('keeps its cause', () => {
    const cause = new SyntaxError('bad token');
    expect(new TerminalError(ErrorCodes.invalidJson, 'x', cause).cause).toBe(cause);
  });

  it('has no cause property when none is given', () => {
    expect(Object.hasOwn(new TerminalError(ErrorCodes.rejected, 'x'), 'cause')).toBe(false);
  });

  it('toData() gives exactly { code, message, retryable } as a plain object', () => {
    const data = new TerminalError(ErrorCodes.badSubject, 'bad', new Error('inner')).toData();
    expect(data).toStrictEqual({ code: 'bad_subject', message: 'bad', retryable: false });
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
    expect(JSON.parse(JSON.stringify(data))).toStrictEqual(data);
  });
});

describe('RetryableError', () => {
  it('is a retryable RespawnError with its code, message, name and delay', () => {
    const err = new RetryableError(ErrorCodes.unavailable, 'db down', { delayMs: 250 });
    expect(err).toBeInstanceOf(Error);
    expect(err).toBeInstanceOf(RespawnError);
    expect(err).not.toBeInstanceOf(TerminalError);
    expect(err.retryable).toBe(true);
    expect(err.code).toBe('unavailable');
    expect(err.message).toBe('db down');
    expect(err.name).toBe('RetryableError');
    expect(err.delayMs).toBe(250);
  });

  it('has no delay and no cause by default', () => {
    const err = new RetryableError(ErrorCodes.staleState, 'moved');
    expect(err.delayMs).toBeUndefined();
    expect(Object.hasOwn(err, 'cause')).toBe(false);
  });

  it('keeps its cause', () => {
    const cause = new Error('ECONNRESET');
    expect(new RetryableError(ErrorCodes.unavailable, 'x', { cause }).cause).toBe(cause);
  });

  it('toData() gives exactly { code, message, retryable } as a plain object', () => {
    const data = new RetryableError(ErrorCodes.unavailable, 'later', {
      delayMs: 5,
      cause: new Error('inner'),
    }).toData();
    expect(data).toStrictEqual({ code: 'unavailable', message: 'later', retryable: true });
    expect(Object.getPrototypeOf(data)).toBe(Object.prototype);
  });
});
