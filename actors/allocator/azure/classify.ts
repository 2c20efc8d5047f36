/**
 * Turns whatever the Azure SDK threw into a ProviderError with a stable kind. The SDK throws
 * RestError (with `code`, `statusCode`, response headers) for a refused request, a plain Error
 * "The long-running operation has failed. <Code>. <message>" when an operation ends Failed,
 * RestError without a status for network failures, and AbortError when a deadline fires.
 */
import { ProviderError, ProviderErrorKinds, type ProviderErrorKind } from './port.ts';

const CAPACITY_CODES = new Set([
  'SkuNotAvailable',
  'AllocationFailed',
  'ZonalAllocationFailed',
  'OverconstrainedAllocationRequest',
  'OverconstrainedZonalAllocationRequest',
]);
const THROTTLE_CODES = new Set([
  'TooManyRequests',
  'SubscriptionRequestsThrottled',
  'ResourceRequestsThrottled',
]);
const NOT_FOUND_CODES = new Set([
  'ResourceNotFound',
  'NotFound',
  'ResourceGroupNotFound',
  'SubscriptionNotFound',
  'InvalidResourceReference',
]);
const CONFLICT_CODES = new Set([
  'Conflict',
  'NicInUse',
  'PublicIPAddressCannotBeDeleted',
  'PublicIPAddressInUse',
  'InUseNetworkSecurityGroupCannotBeDeleted',
  'AnotherOperationInProgress',
  'PropertyChangeNotAllowed',
  'OperationPreempted',
  'OperationNotAllowed',
]);
const TRANSIENT_CODES = new Set([
  'InternalServerError',
  'InternalExecutionError',
  'RetryableError',
  'ServiceUnavailable',
  'GatewayTimeout',
  'OperationTimedOut',
  'NetworkError',
]);
const NETWORK_CODES =
  /^(ECONNREFUSED|ECONNRESET|ETIMEDOUT|EPIPE|ENOTFOUND|EAI_AGAIN|EHOSTUNREACH|ENETUNREACH|REQUEST_SEND_ERROR|UND_ERR_\w+)$/;
const TLS_CODES = /CERT|SELF_SIGNED|UNABLE_TO_VERIFY|ERR_TLS/;
const LRO_FAILED = /^The long-running operation has failed\. ([A-Za-z0-9_]+)\. ([\s\S]*)$/;

/** Our own deadline fired (the provider's overall timeout). */
export class DeadlineExceeded extends Error {
  constructor(operation: string, ms: number) {
    super(`${operation} did not finish within ${ms} ms`);
    this.name = 'DeadlineExceeded';
  }
}

interface Raw {
  name: string;
  message: string;
  code: string | undefined;
  statusCode: number | undefined;
  retryAfter: string | undefined;
  retryAfterMs: string | undefined;
}

function field(obj: unknown, name: string): unknown {
  return typeof obj === 'object' && obj !== null
    ? (obj as Record<string, unknown>)[name]
    : undefined;
}

function header(err: unknown, name: string): string | undefined {
  const headers = field(field(err, 'response'), 'headers');
  const get = field(headers, 'get');
  if (typeof get !== 'function') return undefined;
  const value: unknown = Reflect.apply(get, headers, [name]);
  return typeof value === 'string' ? value : undefined;
}

function inspect(err: unknown): Raw {
  const name = field(err, 'name');
  const message = field(err, 'message');
  const code = field(err, 'code');
  const statusCode = field(err, 'statusCode');
  return {
    name: typeof name === 'string' ? name : 'Error',
    message: typeof message === 'string' ? message : String(err),
    code: typeof code === 'string' && code !== '' ? code : undefined,
    statusCode: typeof statusCode === 'number' ? statusCode : undefined,
    retryAfter: header(err, 'retry-after'),
    retryAfterMs: header(err, 'retry-after-ms') ?? header(err, 'x-ms-retry-after-ms'),
  };
}

/** Retry-After is seconds or an HTTP date; the -ms variants are milliseconds. */
export function parseRetryAfter(
  value: string | undefined,
  valueMs: string | undefined,
  now: number = Date.now(),
): number | null {
  if (valueMs !== undefined && /^\d+$/.test(valueMs.trim())) return Number(valueMs.trim());
  if (value === undefined) return null;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? null : Math.max(0, at - now);
}

function kindOf(
  code: string | undefined,
  message: string,
  status: number | undefined,
  name: string,
): ProviderErrorKind {
  if (code !== undefined && CAPACITY_CODES.has(code)) return ProviderErrorKinds.capacity;
  if (code === 'QuotaExceeded' || (code === 'OperationNotAllowed' && /quota/i.test(message))) {
    return ProviderErrorKinds.quota;
  }
  if (status === 429 || (code !== undefined && THROTTLE_CODES.has(code)))
    return ProviderErrorKinds.throttled;
  if (status === 404 || (code !== undefined && NOT_FOUND_CODES.has(code)))
    return ProviderErrorKinds.notFound;
  if (status === 409 || (code !== undefined && CONFLICT_CODES.has(code)))
    return ProviderErrorKinds.conflict;
  if (status !== undefined && status >= 500) return ProviderErrorKinds.transient;
  // An untrusted certificate is configuration, not weather: retrying will not fix it.
  if (code !== undefined && TLS_CODES.test(code)) return ProviderErrorKinds.other;
  if (code !== undefined && (TRANSIENT_CODES.has(code) || NETWORK_CODES.test(code)))
    return ProviderErrorKinds.transient;
  // A RestError without a status never got an answer: the network failed.
  if (name === 'RestError' && status === undefined) return ProviderErrorKinds.transient;
  if (name === 'AbortError') return ProviderErrorKinds.transient;
  return ProviderErrorKinds.other;
}

export function classifyProviderError(err: unknown, operation: string): ProviderError {
  if (err instanceof ProviderError) return err;
  if (err instanceof DeadlineExceeded) {
    return new ProviderError(
      {
        kind: ProviderErrorKinds.transient,
        code: 'OperationTimedOut',
        message: err.message,
        operation,
      },
      err,
    );
  }
  const raw = inspect(err);
  const lro = LRO_FAILED.exec(raw.message);
  const code = lro?.[1] ?? raw.code;
  const message = lro?.[2] ?? raw.message;
  const kind = kindOf(code, message, raw.statusCode, raw.name);
  const fallbackCode =
    kind === ProviderErrorKinds.transient && raw.statusCode === undefined
      ? raw.name === 'AbortError'
        ? 'Aborted'
        : 'NetworkError'
      : 'Unknown';
  return new ProviderError(
    {
      kind,
      code: code ?? fallbackCode,
      message,
      operation,
      statusCode: raw.statusCode ?? null,
      retryAfterMs:
        kind === ProviderErrorKinds.throttled
          ? parseRetryAfter(raw.retryAfter, raw.retryAfterMs)
          : null,
    },
    // Not the SDK's error itself: it holds the request, whose body can carry the VM's admin
    // password and userData. Only what explains the failure travels on.
    { name: raw.name, message: raw.message, code: raw.code, statusCode: raw.statusCode },
  );
}
