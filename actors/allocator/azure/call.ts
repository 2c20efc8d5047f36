/** How every provider call runs: a deadline, classification of failures, one log line. */
import type { Logger } from 'pino';
import {
  SpanKind,
  TraceAttributes,
  openSpan,
  runInContext,
  spanError,
  traceIdOf,
} from '../../../contracts/index.ts';
import { DeadlineExceeded, classifyProviderError } from './classify.ts';
import { ProviderError, ProviderErrorKinds } from './port.ts';

const NAME = /^[A-Za-z0-9]([A-Za-z0-9_.-]*[A-Za-z0-9_])?$/;

export interface Caller {
  run: <T>(
    operation: string,
    fields: Record<string, unknown>,
    timeoutMs: number,
    fn: (signal: AbortSignal) => Promise<T>,
  ) => Promise<T>;
  /** A get that answers null for a missing resource. */
  orNull: <T>(p: Promise<T>, operation: string) => Promise<T | null>;
  /** Refuses a name Azure would refuse (or that could escape its URL) before any request. */
  checkName: (operation: string, name: string, max: number) => void;
}

export function createCaller(log: Logger): Caller {
  return {
    async run(operation, fields, timeoutMs, fn) {
      const started = performance.now();
      const controller = new AbortController();
      let timer: NodeJS.Timeout | undefined;
      // The SDK honours the abort signal; the race also frees the caller if some layer does not.
      const deadline = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => {
          reject(new DeadlineExceeded(operation, timeoutMs));
          controller.abort();
        }, timeoutMs);
      });
      // A client span per SDK call, under the effect's span; the SDK's HTTP calls nest in it.
      const { span, ctx } = openSpan(`azure ${operation}`, {
        kind: SpanKind.CLIENT,
        attributes: { [TraceAttributes.operation]: operation },
      });
      try {
        const result = await Promise.race([
          runInContext(ctx, () => fn(controller.signal)),
          deadline,
        ]);
        log.debug(
          { op: operation, ...fields, ms: Math.round(performance.now() - started) },
          'azure call done',
        );
        return result;
      } catch (err) {
        const error = classifyProviderError(err, operation);
        const level = error.kind === ProviderErrorKinds.notFound ? 'debug' : 'warn';
        if (error.kind !== ProviderErrorKinds.notFound) spanError(span, error.message, error.code);
        log[level](
          {
            traceId: traceIdOf(span),
            op: operation,
            ...fields,
            ms: Math.round(performance.now() - started),
            kind: error.kind,
            code: error.code,
            statusCode: error.statusCode,
            retryAfterMs: error.retryAfterMs,
            reason: error.message,
          },
          'azure call failed',
        );
        throw error;
      } finally {
        clearTimeout(timer);
        span.end();
      }
    },

    async orNull(p, operation) {
      try {
        return await p;
      } catch (err) {
        if (classifyProviderError(err, operation).kind === ProviderErrorKinds.notFound) return null;
        throw err;
      }
    },

    checkName(operation, name, max) {
      if (name.length > max || !NAME.test(name)) {
        throw new ProviderError({
          kind: ProviderErrorKinds.other,
          code: 'InvalidResourceName',
          message: `'${name}' is not a valid Azure resource name`,
          operation,
        });
      }
    },
  };
}
