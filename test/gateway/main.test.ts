/**
 * The gateway process as deployed (`node --import tsx gateway/main.ts`): refuses to start on
 * a bad environment naming what is wrong; otherwise serves webhooks, sends to Telegram, never
 * logs its secrets, and exits 0 on SIGTERM.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import {
  Streams,
  TelegramSend,
  ingressSubject,
  outTelegramSubject,
} from '../../contracts/index.ts';
import { redisPrefix, redisUrl } from '../harness/index.ts';
import { eventually } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  RAZORPAY_SECRET,
  TELEGRAM_SECRET,
  postUpdate,
  request,
  busAndFake,
  stored,
  textUpdate,
} from './support.ts';

const env = busAndFake();

function spawnGateway(env: Record<string, string>): { child: ChildProcess; output: () => string } {
  let out = '';
  const child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
    env: { PATH: process.env.PATH ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.on('data', (c: Buffer) => (out += c.toString()));
  child.stderr?.on('data', (c: Buffer) => (out += c.toString()));
  return { child, output: () => out };
}

const exited = (child: ChildProcess): Promise<number | null> =>
  child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('exit', (code) => resolve(code)));

describe('gateway process', () => {
  it('refuses to start without its secrets, naming each missing variable', async () => {
    const { child, output } = spawnGateway({ TELEGRAM_MODE: 'webhook' });
    expect(await exited(child)).toBe(2);
    for (const name of [
      'TELEGRAM_BOT_TOKEN',
      'TELEGRAM_WEBHOOK_SECRET',
      'RAZORPAY_WEBHOOK_SECRET',
    ]) {
      expect(output()).toContain(name);
    }
  });

  it('serves the webhook, sends to Telegram, keeps its secrets out of the log, and stops on SIGTERM', async () => {
    const { child, output } = spawnGateway({
      NATS_URL: env.bus.nats.url,
      REDIS_URL: redisUrl(),
      GATEWAY_HOST: '127.0.0.1',
      GATEWAY_PORT: '0',
      LOG_LEVEL: 'debug',
      TELEGRAM_BOT_TOKEN: BOT_TOKEN,
      TELEGRAM_API_ROOT: env.fake.url,
      TELEGRAM_WEBHOOK_SECRET: TELEGRAM_SECRET,
      RAZORPAY_WEBHOOK_SECRET: RAZORPAY_SECRET,
      RATE_LIMIT_PREFIX: redisPrefix(),
      TELEGRAM_PER_CHAT_INTERVAL_MS: '0',
    });
    try {
      let url = '';
      await eventually(
        'the gateway listens',
        () => {
          const m = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output());
          url = m?.[1] ?? '';
          return Promise.resolve(url !== '');
        },
        20_000,
      );
      expect((await request(url, '/readyz')).status).toBe(200);
      expect((await postUpdate(url, textUpdate(31337, 99, '/start'))).status).toBe(200);
      const inbound = await stored(env.bus.jsm, Streams.ingress.name, ingressSubject('telegram'));
      expect(inbound.map((m) => m.headers['Nats-Msg-Id'])).toContain('tg-31337');
      expect(
        (await postUpdate(url, textUpdate(31338, 99, '/start'), { secret: 'wrong' })).status,
      ).toBe(401);

      await env.bus.js.publish(
        outTelegramSubject('99'),
        TelegramSend.encode({ chatId: '99', text: 'Welcome to Respawn' }),
        {
          msgID: 'main-test-1',
        },
      );
      await eventually(
        'the welcome arrives',
        () => Promise.resolve(env.fake.sent(99).length === 1),
        10_000,
      );

      child.kill('SIGTERM');
      expect(await exited(child)).toBe(0);
      const log = output();
      expect(log).toContain('telegram bot identified');
      for (const secret of [BOT_TOKEN, TELEGRAM_SECRET, RAZORPAY_SECRET])
        expect(log).not.toContain(secret);
    } finally {
      if (child.exitCode === null) child.kill('SIGKILL');
    }
  });
});
