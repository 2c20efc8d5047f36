/**
 * Secrets readable from files (`<NAME>_FILE`) in every process's configuration: the shared
 * resolver (contracts/secrets.ts) and each loader that uses it (worker, gateway, Razorpay API,
 * `npm start`), plus the NATS client settings validated with them. Errors name the variable,
 * never the value.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  SECRET_VARIABLES,
  databaseUrlWithPassword,
  natsConnectOptions,
  resolveSecretFiles,
} from '../../contracts/index.ts';
import { loadWorkerConfig } from '../../actors/config.ts';
import { loadGatewayEnv } from '../../gateway/config.ts';
import { loadRazorpayApiConfig } from '../../gateway/razorpay/config.ts';
import { loadLocalOptions } from '../../deploy/local/env.ts';

let dir: string;
const file = (name: string): string => path.join(dir, name);

const TOKEN = '123456:FILE-token_abcdefghij';
const NATS_PASS = 'natsFromFile0123456789';

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'respawn-secrets-'));
  await writeFile(file('token'), `${TOKEN}\n`);
  await writeFile(file('tg-secret'), '  tg-secret_from_file \n');
  await writeFile(file('rzp-webhook'), 'rzp_webhook_from_file');
  await writeFile(file('rzp-key'), 'rzp-key-secret-from-file\n');
  await writeFile(file('nats'), `${NATS_PASS}\n`);
  await writeFile(file('db-url'), 'postgres://app:s3cret@db:5432/respawn\n');
  await writeFile(file('db-pass'), 'p@ss/word:1\n');
  await writeFile(file('azure'), 'azure-client-secret\n');
  await writeFile(file('empty'), ' \n');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const gatewayBase = {
  TELEGRAM_BOT_TOKEN: '123456:ENV-token_abcdefghij',
  TELEGRAM_WEBHOOK_SECRET: 'tg-secret_env',
  RAZORPAY_WEBHOOK_SECRET: 'rzp_webhook_env',
};

function errorOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    return err instanceof Error ? err.message : String(err);
  }
  throw new Error('expected an error, the configuration loaded');
}

describe('resolveSecretFiles', () => {
  it('covers every secret the processes read', () => {
    expect([...SECRET_VARIABLES].sort()).toEqual(
      [
        'AGENT_TOKEN_SECRET',
        'AZURE_CLIENT_SECRET',
        'DATABASE_PASSWORD',
        'DATABASE_URL',
        'NATS_PASSWORD',
        'RAZORPAY_KEY_SECRET',
        'RAZORPAY_WEBHOOK_SECRET',
        'TELEGRAM_BOT_TOKEN',
        'TELEGRAM_WEBHOOK_SECRET',
      ].sort(),
    );
  });

  it('replaces NAME_FILE by NAME holding the trimmed contents, and leaves the rest', () => {
    const r = resolveSecretFiles({ TELEGRAM_BOT_TOKEN_FILE: file('token'), LOG_LEVEL: 'debug' });
    expect(r.problems).toEqual([]);
    expect(r.env).toEqual({ TELEGRAM_BOT_TOKEN: TOKEN, LOG_LEVEL: 'debug' });
  });

  it('treats an empty NAME_FILE as unset (Compose’s ${NAME_FILE:-})', () => {
    const r = resolveSecretFiles({ TELEGRAM_BOT_TOKEN: 'x', TELEGRAM_BOT_TOKEN_FILE: '' });
    expect(r).toEqual({ env: { TELEGRAM_BOT_TOKEN: 'x' }, problems: [] });
  });

  it('refuses NAME and NAME_FILE together, an unreadable file and an empty file', () => {
    const r = resolveSecretFiles({
      TELEGRAM_BOT_TOKEN: 'from-env',
      TELEGRAM_BOT_TOKEN_FILE: file('token'),
      NATS_PASSWORD_FILE: file('missing'),
      AGENT_TOKEN_SECRET_FILE: file('empty'),
    });
    expect(r.problems).toEqual([
      '  TELEGRAM_BOT_TOKEN, TELEGRAM_BOT_TOKEN_FILE: both are set; set one of them',
      `  AGENT_TOKEN_SECRET_FILE: ${file('empty')} is empty`,
      `  NATS_PASSWORD_FILE: cannot read ${file('missing')} (ENOENT)`,
    ]);
    expect(r.problems.join('\n')).not.toContain('from-env');
    expect(r.problems.join('\n')).not.toContain(TOKEN);
  });

  it('is idempotent: a resolved environment resolves to itself', () => {
    const once = resolveSecretFiles({ NATS_PASSWORD_FILE: file('nats') });
    expect(resolveSecretFiles(once.env)).toEqual({ env: once.env, problems: [] });
  });
});

describe('the configuration loaders read secrets from files', () => {
  it('worker: DATABASE_URL, NATS_PASSWORD and AZURE_CLIENT_SECRET', () => {
    const cfg = loadWorkerConfig({
      DATABASE_URL_FILE: file('db-url'),
      NATS_URL: 'nats://a:4222, nats://b:4222',
      NATS_USER: 'actors',
      NATS_PASSWORD_FILE: file('nats'),
      AZURE_CLIENT_SECRET_FILE: file('azure'),
    });
    expect(cfg.DATABASE_URL).toBe('postgres://app:s3cret@db:5432/respawn');
    expect(cfg.NATS_PASSWORD).toBe(NATS_PASS);
    expect(cfg.AZURE_CLIENT_SECRET).toBe('azure-client-secret');
    expect(natsConnectOptions(cfg, 'actors', 'respawn-actors')).toMatchObject({
      servers: ['nats://a:4222', 'nats://b:4222'],
      user: 'actors',
      pass: NATS_PASS,
      inboxPrefix: '_INBOX_actors',
    });
  });

  it('worker: DATABASE_PASSWORD goes into DATABASE_URL, percent-encoded', () => {
    const cfg = loadWorkerConfig({
      DATABASE_URL: 'postgres://app@db:5432/respawn',
      DATABASE_PASSWORD_FILE: file('db-pass'),
    });
    expect(cfg.DATABASE_URL).toBe('postgres://app:p%40ss%2Fword%3A1@db:5432/respawn');
    expect(new URL(cfg.DATABASE_URL).password).toBe(encodeURIComponent('p@ss/word:1'));
    expect(databaseUrlWithPassword('postgres://a:b@h/d', 'c').problem).toMatch(
      /already; set one of them/,
    );
  });

  it('worker: names every problem at once, never a value', () => {
    const message = errorOf(() =>
      loadWorkerConfig({
        DATABASE_URL: 'postgres://app:hunter2hunter2@db/respawn',
        DATABASE_URL_FILE: file('db-url'),
        NATS_USER: 'actors',
        AZURE_CLIENT_SECRET_FILE: file('missing'),
      }),
    );
    expect(message).toContain('DATABASE_URL, DATABASE_URL_FILE: both are set');
    expect(message).toContain('AZURE_CLIENT_SECRET_FILE: cannot read');
    expect(message).toContain('NATS_PASSWORD: required when NATS_USER is set');
    expect(message).not.toContain('hunter2');
    expect(message).not.toContain('s3cret');
  });

  it('gateway: bot token, webhook secrets and NATS password; cross-checks use the file', () => {
    const env = loadGatewayEnv({
      TELEGRAM_BOT_TOKEN_FILE: file('token'),
      TELEGRAM_WEBHOOK_SECRET_FILE: file('tg-secret'),
      RAZORPAY_WEBHOOK_SECRET_FILE: file('rzp-webhook'),
      NATS_USER: 'gateway',
      NATS_PASSWORD_FILE: file('nats'),
    });
    expect(env.TELEGRAM_BOT_TOKEN).toBe(TOKEN);
    // TELEGRAM_MODE=webhook requires the secret: given by file, the rule is satisfied.
    expect(env.TELEGRAM_WEBHOOK_SECRET).toBe('tg-secret_from_file');
    expect(env.RAZORPAY_WEBHOOK_SECRET).toBe('rzp_webhook_from_file');
    expect(env.NATS_PASSWORD).toBe(NATS_PASS);
  });

  it('gateway: both set is refused naming the pair, without the value', () => {
    const message = errorOf(() =>
      loadGatewayEnv({ ...gatewayBase, TELEGRAM_BOT_TOKEN_FILE: file('token') }),
    );
    expect(message).toContain('TELEGRAM_BOT_TOKEN, TELEGRAM_BOT_TOKEN_FILE: both are set');
    expect(message).not.toContain(TOKEN);
    expect(message).not.toContain(gatewayBase.TELEGRAM_BOT_TOKEN);
  });

  it('Razorpay API: the key secret', () => {
    const cfg = loadRazorpayApiConfig({
      RAZORPAY_KEY_ID: 'rzp_test_abc123',
      RAZORPAY_KEY_SECRET_FILE: file('rzp-key'),
    });
    expect(cfg.keySecret).toBe('rzp-key-secret-from-file');
    expect(
      errorOf(() =>
        loadRazorpayApiConfig({
          RAZORPAY_KEY_ID: 'rzp_test_abc123',
          RAZORPAY_KEY_SECRET_FILE: file('empty'),
        }),
      ),
    ).toContain('RAZORPAY_KEY_SECRET_FILE');
  });

  it('npm start: Telegram and Razorpay credentials', () => {
    const opts = loadLocalOptions(
      {
        TELEGRAM_BOT_TOKEN_FILE: file('token'),
        RAZORPAY_KEY_ID: 'rzp_test_abc123',
        RAZORPAY_KEY_SECRET_FILE: file('rzp-key'),
        RAZORPAY_WEBHOOK_SECRET_FILE: file('rzp-webhook'),
      },
      pino({ level: 'silent' }),
    );
    expect(opts.telegram?.token).toBe(TOKEN);
    expect(opts.razorpay?.keySecret).toBe('rzp-key-secret-from-file');
  });
});

describe('NATS client settings', () => {
  it('refuses credentials in NATS_URL (the client would drop them) and a bad password', () => {
    const message = errorOf(() =>
      loadWorkerConfig({
        NATS_URL: 'nats://actors:pw@nats-1:4222',
        NATS_USER: 'actors',
        NATS_PASSWORD: '123456789012345678',
      }),
    );
    expect(message).toContain('NATS_URL: must not hold credentials');
    expect(message).toContain('NATS_PASSWORD: must be 16-256');
    expect(message).not.toContain('123456789012345678');
  });

  it('accepts RESPAWN_STREAM_REPLICAS 1, 3 or 5 only', () => {
    expect(loadWorkerConfig({ RESPAWN_STREAM_REPLICAS: '3' }).RESPAWN_STREAM_REPLICAS).toBe(3);
    expect(errorOf(() => loadWorkerConfig({ RESPAWN_STREAM_REPLICAS: '2' }))).toContain(
      'RESPAWN_STREAM_REPLICAS',
    );
  });

  it('connects without credentials when none are configured', () => {
    const o = natsConnectOptions({ NATS_URL: 'nats://127.0.0.1:4222' }, 'gateway', 'g');
    expect(o).not.toHaveProperty('user');
    expect(o.inboxPrefix).toBe('_INBOX_gateway');
  });
});
