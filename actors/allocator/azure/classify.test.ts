/** Error classification, without any server: what each shape the Azure SDK throws becomes. */
import { describe, expect, it } from 'vitest';
import { DeadlineExceeded, classifyProviderError, parseRetryAfter } from './classify.ts';
import { ProviderError } from './port.ts';

/** The shape of the SDK's RestError: name, code, statusCode, response headers with get(). */
function restError(
  code: string | undefined,
  statusCode: number | undefined,
  headers: Record<string, string> = {},
  message = 'm',
): Error {
  const err = new Error(message);
  err.name = 'RestError';
  Object.assign(err, {
    code,
    statusCode,
    response: { headers: { get: (n: string) => headers[n.toLowerCase()] } },
  });
  return err;
}

const lroFailed = (code: string, message: string): Error =>
  new Error(`The long-running operation has failed. ${code}. ${message}`);

describe('classifyProviderError', () => {
  it.each([
    ['SkuNotAvailable', 409, 'capacity'],
    ['QuotaExceeded', 409, 'quota'],
    ['TooManyRequests', 429, 'throttled'],
    ['ResourceNotFound', 404, 'not_found'],
    ['ResourceGroupNotFound', 404, 'not_found'],
    ['NicInUse', 400, 'conflict'],
    ['PublicIPAddressCannotBeDeleted', 400, 'conflict'],
    ['PublicIPAddressInUse', 400, 'conflict'],
    ['OperationNotAllowed', 409, 'conflict'],
    ['InternalServerError', 500, 'transient'],
    ['ServiceUnavailable', 503, 'transient'],
    ['InvalidParameter', 400, 'other'],
    ['AuthenticationFailed', 401, 'other'],
  ])('a refused request %s (%i) is %s', (code, status, kind) => {
    expect(classifyProviderError(restError(code, status), 'op')).toMatchObject({
      kind,
      code,
      statusCode: status,
      operation: 'op',
    });
  });

  it('reads OperationNotAllowed as quota only when the message is about quota', () => {
    const quota = restError(
      'OperationNotAllowed',
      409,
      {},
      'Operation could not be completed as it results in exceeding approved LowPriorityCores quota.',
    );
    expect(classifyProviderError(quota, 'op').kind).toBe('quota');
    expect(
      classifyProviderError(restError('OperationNotAllowed', 409, {}, 'Disk is attached'), 'op')
        .kind,
    ).toBe('conflict');
  });

  it.each([
    ['AllocationFailed', 'capacity'],
    ['ZonalAllocationFailed', 'capacity'],
    ['OverconstrainedAllocationRequest', 'capacity'],
    ['OverconstrainedZonalAllocationRequest', 'capacity'],
    ['InternalExecutionError', 'transient'],
    ['VMAgentStatusCommunicationError', 'other'],
  ])('a failed long-running operation %s is %s, with its code and message', (code, kind) => {
    const err = classifyProviderError(
      lroFailed(code, 'Allocation failed. Try later.'),
      'createOrUpdateVm',
    );
    expect(err).toMatchObject({
      kind,
      code,
      message: 'Allocation failed. Try later.',
      statusCode: null,
    });
  });

  it('takes retryAfterMs from Retry-After seconds, an HTTP date, or retry-after-ms', () => {
    expect(
      classifyProviderError(restError('TooManyRequests', 429, { 'retry-after': '17' }), 'op')
        .retryAfterMs,
    ).toBe(17_000);
    expect(
      classifyProviderError(restError('TooManyRequests', 429, { 'retry-after-ms': '250' }), 'op')
        .retryAfterMs,
    ).toBe(250);
    expect(classifyProviderError(restError('TooManyRequests', 429), 'op')).toMatchObject({
      kind: 'throttled',
      retryAfterMs: null,
    });
    const now = Date.parse('2026-01-01T00:00:00Z');
    expect(parseRetryAfter('Thu, 01 Jan 2026 00:00:30 GMT', undefined, now)).toBe(30_000);
    expect(parseRetryAfter('Wed, 31 Dec 2025 23:00:00 GMT', undefined, now)).toBe(0);
    expect(parseRetryAfter('soon', undefined, now)).toBeNull();
  });

  it('reads network failures, aborts and our own deadline as transient, an untrusted certificate as other', () => {
    expect(classifyProviderError(restError('ECONNREFUSED', undefined), 'op')).toMatchObject({
      kind: 'transient',
      code: 'ECONNREFUSED',
    });
    expect(classifyProviderError(restError(undefined, undefined), 'op')).toMatchObject({
      kind: 'transient',
      code: 'NetworkError',
    });
    expect(
      classifyProviderError(restError('DEPTH_ZERO_SELF_SIGNED_CERT', undefined), 'op').kind,
    ).toBe('other');
    const abort = new Error('aborted');
    abort.name = 'AbortError';
    expect(classifyProviderError(abort, 'op')).toMatchObject({
      kind: 'transient',
      code: 'Aborted',
    });
    expect(
      classifyProviderError(new DeadlineExceeded('createOrUpdateVm', 500), 'createOrUpdateVm'),
    ).toMatchObject({
      kind: 'transient',
      code: 'OperationTimedOut',
      message: 'createOrUpdateVm did not finish within 500 ms',
    });
  });

  it('leaves a ProviderError as it is, and anything unknown as other', () => {
    const mine = new ProviderError({ kind: 'quota', code: 'X', message: 'm', operation: 'o' });
    expect(classifyProviderError(mine, 'other-op')).toBe(mine);
    expect(classifyProviderError('a string', 'op')).toMatchObject({
      kind: 'other',
      code: 'Unknown',
      message: 'a string',
    });
  });

  it('crosses a process boundary as plain data', () => {
    const err = classifyProviderError(
      restError('TooManyRequests', 429, { 'retry-after': '2' }, 'slow down'),
      'getUsage',
    );
    expect(JSON.parse(JSON.stringify(err.toData()))).toEqual({
      kind: 'throttled',
      code: 'TooManyRequests',
      message: 'slow down',
      operation: 'getUsage',
      statusCode: 429,
      retryAfterMs: 2000,
    });
  });
});
