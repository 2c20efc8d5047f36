/** The process's root logger. Secrets are redacted here, once, for every child logger. */
import { pino, type Logger } from 'pino';
import { redactSecrets } from '../contracts/index.ts';

export const REDACT_PATHS = [
  'password',
  '*.password',
  'token',
  '*.token',
  'secret',
  '*.secret',
  'authorization',
  '*.authorization',
  'headers.authorization',
  'DATABASE_URL',
  '*.DATABASE_URL',
];

export function createRootLogger(opts: { level: string; name: string }): Logger {
  return pino({
    name: opts.name,
    level: opts.level,
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    // Path redaction covers the known places; the walk catches every other depth.
    formatters: { log: (o) => redactSecrets(o) as Record<string, unknown> },
    serializers: { err: (e: unknown) => redactSecrets(e) },
  });
}
