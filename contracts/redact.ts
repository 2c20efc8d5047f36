/**
 * Secret redaction shared by every process's root logger. pino's path redaction reaches only
 * the depths it is told; secrets arrive at any depth (a config object, request headers, an
 * environment dump), so log objects are walked and any value under a secret-looking key is
 * replaced, and passwords inside connection URLs are masked wherever they appear.
 */

/** Keys whose values are secrets, whatever their nesting: tokens, secrets, passwords, … */
const SECRET_KEY =
  /(token|secret|password|passwd|signature|authorization|api[-_]?key|private[-_]?key|credential|cookie)/i;

/** `scheme://user:password@host` → `scheme://user:[redacted]@host`. */
const URL_PASSWORD = /([a-z][a-z0-9+.-]*:\/\/[^/\s:@]*:)[^@\s/]+@/gi;

export const REDACTED = '[redacted]';

export function isSecretKey(key: string): boolean {
  return SECRET_KEY.test(key);
}

export function maskUrlPasswords(text: string): string {
  return text.replace(URL_PASSWORD, `$1${REDACTED}@`);
}

/** A copy of `value` with secrets replaced; errors keep their message and stack, masked. */
export function redactSecrets(value: unknown, depth = 0): unknown {
  if (depth > 8) return value;
  if (typeof value === 'string') return maskUrlPasswords(value);
  if (value === null || typeof value !== 'object') return value;
  if (Array.isArray(value)) return value.map((v) => redactSecrets(v, depth + 1));
  if (value instanceof Error) {
    const out: Record<string, unknown> = {
      type: value.name,
      message: maskUrlPasswords(value.message),
      ...(value.stack === undefined ? {} : { stack: maskUrlPasswords(value.stack) }),
    };
    for (const [k, v] of Object.entries(value)) {
      out[k] = isSecretKey(k) ? REDACTED : redactSecrets(v, depth + 1);
    }
    return out;
  }
  if (value instanceof Date || ArrayBuffer.isView(value)) return value;
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    out[k] =
      isSecretKey(k) && v !== undefined && v !== null ? REDACTED : redactSecrets(v, depth + 1);
  }
  return out;
}
