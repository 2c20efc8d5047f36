/**
 * The documented catalogue of error codes. An error crosses a process boundary (a dead
 * letter, a reply) as plain data: { code, message, retryable }.
 */
export const ErrorCodes = {
  /** The payload is not UTF-8 JSON. */
  invalidJson: 'invalid_json',
  /** The JSON does not match the schema of its declared type. */
  invalidPayload: 'invalid_payload',
  /** The payload is larger than MAX_PAYLOAD_BYTES. */
  payloadTooLarge: 'payload_too_large',
  /** The payload's `type` is not one this consumer accepts. */
  unknownType: 'unknown_type',
  /** The subject does not have the shape the contract gives it, or a token is invalid. */
  badSubject: 'bad_subject',
  /** The partition token does not match the key's partition (published around the mapping). */
  wrongPartition: 'wrong_partition',
  /** A handler refused the message for good (a business rule, an impossible request). */
  rejected: 'rejected',
  /** The handler or the state it produced broke an invariant (a bug): retrying cannot help. */
  handlerBug: 'handler_bug',
  /** A retryable failure kept failing until the attempt limit. */
  attemptsExhausted: 'attempts_exhausted',
  /** Another writer changed the actor's state first (fencing); retried. */
  staleState: 'stale_state',
  /** A dependency (database, NATS) failed; retried with backoff. */
  unavailable: 'unavailable',
  /** Valid input that names nobody Respawn knows (a payment for no known top-up). */
  unroutable: 'unroutable',
  /** Razorpay refused an effect for good, or kept failing (the gateway's Razorpay effects). */
  razorpayError: 'razorpay_error',
} as const;
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes];

export interface ErrorData {
  code: ErrorCode;
  message: string;
  retryable: boolean;
}

/** An error that says what must happen to the message: dead-letter it (terminal) or retry it. */
export class RespawnError extends Error {
  readonly code: ErrorCode;
  readonly retryable: boolean;

  constructor(code: ErrorCode, message: string, opts: { retryable: boolean; cause?: unknown }) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'RespawnError';
    this.code = code;
    this.retryable = opts.retryable;
  }

  toData(): ErrorData {
    return { code: this.code, message: this.message, retryable: this.retryable };
  }
}

/** A message that can never be handled: it goes to the dead-letter stream and its key moves on. */
export class TerminalError extends RespawnError {
  constructor(code: ErrorCode, message: string, cause?: unknown) {
    super(code, message, { retryable: false, cause });
    this.name = 'TerminalError';
  }
}

/** A message that may succeed later: it is retried in place, after `delayMs` if given. */
export class RetryableError extends RespawnError {
  readonly delayMs: number | undefined;

  constructor(code: ErrorCode, message: string, opts: { delayMs?: number; cause?: unknown } = {}) {
    super(code, message, { retryable: true, cause: opts.cause });
    this.name = 'RetryableError';
    this.delayMs = opts.delayMs;
  }
}
