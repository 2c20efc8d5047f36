/**
 * The fakes' standalone entry points (deploy/fakes/<name>/main.ts, what compose's `fakes`
 * profile runs): each starts as its own process from environment variables, logs pino JSON
 * lines (its URL among them), answers its API, stops cleanly on SIGTERM, and refuses a bad
 * configuration with exit code 2 and a log line naming the variable.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { request } from 'node:https';
import { afterEach, describe, expect, it } from 'vitest';
import { repoPath } from './support.ts';

interface LogLine {
  level: number;
  name?: string;
  msg?: string;
  [k: string]: unknown;
}

interface Started {
  child: ChildProcess;
  lines: LogLine[];
  /** Lines that were not JSON (anything printed outside the logger). */
  stray: string[];
  exit: Promise<number | null>;
}

const running: ChildProcess[] = [];

afterEach(() => {
  for (const c of running.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill();
});

function start(entry: string, env: Record<string, string>): Started {
  const child = spawn(process.execPath, ['--import', 'tsx', entry], {
    cwd: repoPath('.'),
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  running.push(child);
  const lines: LogLine[] = [];
  const stray: string[] = [];
  let buffered = '';
  const take = (chunk: Buffer): void => {
    buffered += chunk.toString('utf8');
    const parts = buffered.split('\n');
    buffered = parts.pop() ?? '';
    for (const p of parts.filter((x) => x.trim() !== '')) {
      try {
        lines.push(JSON.parse(p) as LogLine);
      } catch {
        stray.push(p);
      }
    }
  };
  child.stdout.on('data', take);
  child.stderr.on('data', (c: Buffer) => stray.push(c.toString('utf8')));
  const exit = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  return { child, lines, stray, exit };
}

async function logged(s: Started, msg: string, timeoutMs = 20_000): Promise<LogLine> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const line = s.lines.find((l) => l.msg === msg);
    if (line !== undefined) return line;
    if (s.child.exitCode !== null) {
      throw new Error(`exited ${s.child.exitCode} before "${msg}": ${JSON.stringify(s.lines)}`);
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for log "${msg}"`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** SIGTERM, then the process must log that it stopped and exit 0. */
async function stopsOnSigterm(s: Started, name: string): Promise<void> {
  s.child.kill('SIGTERM');
  expect(await s.exit).toBe(0);
  expect(s.lines.map((l) => l.msg)).toEqual(
    expect.arrayContaining([`${name} stopping`, `${name} stopped`]),
  );
  expect(s.lines.find((l) => l.msg === `${name} stopping`)?.signal).toBe('SIGTERM');
  expect(s.stray).toEqual([]);
}

describe('deploy/fakes/telegram/main.ts', () => {
  const token = '4242:fake-main-test-token';

  it('serves the Bot API for its token from the environment, then stops on SIGTERM', async () => {
    const s = start('deploy/fakes/telegram/main.ts', {
      TELEGRAM_FAKE_PORT: '0',
      TELEGRAM_BOT_TOKEN: token,
      TELEGRAM_FAKE_BOT_USERNAME: 'fake_main_bot',
    });
    const up = await logged(s, 'telegram fake listening');
    expect(up.name).toBe('telegram-fake');
    const url = String(up.url);
    const me = (await (await fetch(`${url}/bot${token}/getMe`)).json()) as {
      ok: boolean;
      result: { id: number; username: string; is_bot: boolean };
    };
    expect(me).toMatchObject({ ok: true, result: { id: 4242, username: 'fake_main_bot' } });
    expect((await fetch(`${url}/bot1:other-token/getMe`)).status).toBe(401);
    // The token is never written to the log.
    expect(JSON.stringify(s.lines)).not.toContain(token);
    await stopsOnSigterm(s, 'telegram fake');
  });

  it('refuses a malformed token: exit 2, naming the variable', async () => {
    const s = start('deploy/fakes/telegram/main.ts', {
      TELEGRAM_FAKE_PORT: '0',
      TELEGRAM_BOT_TOKEN: 'not-a-token',
    });
    expect(await s.exit).toBe(2);
    const fatal = s.lines.find((l) => l.level === 60);
    expect(fatal?.msg).toContain('TELEGRAM_BOT_TOKEN');
    expect(JSON.stringify(s.lines)).not.toContain('not-a-token');
  });
});

describe('deploy/fakes/razorpay/main.ts', () => {
  const keyId = 'rzp_test_fakemain';
  const keySecret = 'fake-main-key-secret';

  it('creates a payment link for its key pair from the environment, then stops on SIGTERM', async () => {
    const s = start('deploy/fakes/razorpay/main.ts', {
      RAZORPAY_FAKE_PORT: '0',
      RAZORPAY_KEY_ID: keyId,
      RAZORPAY_KEY_SECRET: keySecret,
      RAZORPAY_WEBHOOK_SECRET: 'fake-main-webhook-secret',
    });
    const up = await logged(s, 'razorpay fake listening');
    expect(up.name).toBe('razorpay-fake');
    const url = String(up.url);
    const auth = `Basic ${Buffer.from(`${keyId}:${keySecret}`).toString('base64')}`;
    const res = await fetch(`${url}/v1/payment_links`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({
        amount: 25_000,
        currency: 'INR',
        description: 'Respawn top-up',
        reference_id: 'fake-main-1',
      }),
    });
    const link = (await res.json()) as { id: string; amount: number; short_url: string };
    expect(res.status).toBe(200);
    expect(link.amount).toBe(25_000);
    expect(link.short_url).toBe(`${url}/pay/${link.id}`);
    const wrong = `Basic ${Buffer.from(`${keyId}:wrong`).toString('base64')}`;
    expect(
      (await fetch(`${url}/v1/payment_links`, { headers: { authorization: wrong } })).status,
    ).toBe(401);
    expect(JSON.stringify(s.lines)).not.toContain(keySecret);
    await stopsOnSigterm(s, 'razorpay fake');
  });

  it('refuses to start without the webhook secret: exit 2, naming the variable', async () => {
    const s = start('deploy/fakes/razorpay/main.ts', { RAZORPAY_FAKE_PORT: '0' });
    expect(await s.exit).toBe(2);
    expect(s.lines.find((l) => l.level === 60)?.msg).toContain('RAZORPAY_WEBHOOK_SECRET');
  });
});

describe('deploy/fakes/arm/main.ts', () => {
  it('serves ARM over https with the certificate it logs, then stops on SIGTERM', async () => {
    const s = start('deploy/fakes/arm/main.ts', {
      ARM_FAKE_PORT: '0',
      ARM_FAKE_SUBSCRIPTION: '11111111-2222-3333-4444-555555555555',
      ARM_FAKE_LOCATION: 'southindia',
    });
    const up = await logged(s, 'arm fake listening');
    expect(up.name).toBe('arm-fake');
    const ca = readFileSync(String(up.caCertPath), 'utf8');
    const path =
      '/subscriptions/11111111-2222-3333-4444-555555555555/providers/Microsoft.Compute/locations/southindia/usages?api-version=2024-07-01';
    const body = await new Promise<{ status: number; json: unknown }>((resolve, reject) => {
      const req = request(
        new URL(path, String(up.url)),
        { ca, headers: { authorization: 'Bearer offline' } },
        (res) => {
          let data = '';
          res.on('data', (c: Buffer) => (data += c.toString('utf8')));
          res.on('end', () =>
            resolve({ status: res.statusCode ?? 0, json: JSON.parse(data) as unknown }),
          );
        },
      );
      req.on('error', reject);
      req.end();
    });
    expect(body.status).toBe(200);
    expect(body.json).toMatchObject({
      value: expect.arrayContaining([expect.anything()]) as unknown,
    });
    await stopsOnSigterm(s, 'arm fake');
  });

  it('refuses a bad quota document: exit 2, naming the variable', async () => {
    const s = start('deploy/fakes/arm/main.ts', { ARM_FAKE_PORT: '0', ARM_FAKE_QUOTAS: '{"x":' });
    expect(await s.exit).toBe(2);
    expect(s.lines.find((l) => l.level === 60)?.msg).toContain('ARM_FAKE_QUOTAS');
  });
});
