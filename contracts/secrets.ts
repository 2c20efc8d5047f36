/**
 * Secrets given as files: every secret variable NAME may instead be given as NAME_FILE, the
 * path of a file holding the value (a Docker or Kubernetes secret mounted as a file), so the
 * value never sits in the process environment or in `docker inspect`. The configuration
 * loaders call `resolveSecretFiles` before validating, and report its problems with their own.
 */
import { readFileSync } from 'node:fs';

/** Every variable that holds a secret, in any process; each may be given as `<NAME>_FILE`. */
export const SECRET_VARIABLES = [
  'TELEGRAM_BOT_TOKEN',
  'TELEGRAM_WEBHOOK_SECRET',
  'RAZORPAY_KEY_SECRET',
  'RAZORPAY_WEBHOOK_SECRET',
  'AZURE_CLIENT_SECRET',
  'AGENT_TOKEN_SECRET',
  'DATABASE_URL',
  'DATABASE_PASSWORD',
  'NATS_PASSWORD',
] as const;
export type SecretVariable = (typeof SECRET_VARIABLES)[number];

export const FILE_SUFFIX = '_FILE';

export interface ResolvedSecrets {
  /** A copy of the environment with each `<NAME>_FILE` replaced by `<NAME>` (the contents). */
  env: NodeJS.ProcessEnv;
  /** One line per variable that could not be resolved, in the loaders' `  NAME: why` form. */
  problems: string[];
}

/** Reads a file's text; tests pass their own. */
export type ReadText = (path: string) => string;

const readText: ReadText = (path) => readFileSync(path, 'utf8');

function describeReadError(err: unknown): string {
  if (err instanceof Error && 'code' in err && typeof err.code === 'string') return err.code;
  return err instanceof Error ? err.message : String(err);
}

/**
 * Replaces each `<NAME>_FILE` of `names` by `<NAME>` holding the file's contents, trimmed.
 * Setting both `<NAME>` and `<NAME>_FILE`, an unreadable file or an empty one is a problem
 * (never a silent choice); messages name the variable and the path, never the value.
 * Resolving an already resolved environment changes nothing.
 */
export function resolveSecretFiles(
  env: NodeJS.ProcessEnv,
  names: readonly string[] = SECRET_VARIABLES,
  read: ReadText = readText,
): ResolvedSecrets {
  const out: NodeJS.ProcessEnv = { ...env };
  const problems: string[] = [];
  for (const name of names) {
    const fileVar = `${name}${FILE_SUFFIX}`;
    const file = env[fileVar];
    delete out[fileVar];
    // Empty counts as unset, as Compose's `${NAME_FILE:-}` leaves it.
    if (file === undefined || file.trim() === '') continue;
    if (env[name] !== undefined && env[name] !== '') {
      problems.push(`  ${name}, ${fileVar}: both are set; set one of them`);
      continue;
    }
    let text: string;
    try {
      text = read(file);
    } catch (err) {
      problems.push(`  ${fileVar}: cannot read ${file} (${describeReadError(err)})`);
      continue;
    }
    const value = text.trim();
    if (value === '') {
      problems.push(`  ${fileVar}: ${file} is empty`);
      continue;
    }
    out[name] = value;
  }
  return { env: out, problems };
}

/**
 * DATABASE_URL with DATABASE_PASSWORD put in as its password (percent-encoded), so the URL can
 * be plain configuration and only the password a secret. A URL that already holds a password
 * and a DATABASE_PASSWORD is a problem, not a silent choice.
 */
export function databaseUrlWithPassword(
  url: string,
  password: string | undefined,
): { url: string; problem?: string } {
  if (password === undefined || password === '') return { url };
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return { url, problem: '  DATABASE_URL: must be a postgres:// URL' };
  }
  if (parsed.password !== '') {
    return {
      url,
      problem:
        '  DATABASE_URL, DATABASE_PASSWORD: the URL holds a password already; set one of them',
    };
  }
  parsed.password = password;
  return { url: parsed.toString() };
}
