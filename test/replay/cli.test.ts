/**
 * `npm run replay`: export of RESPAWN_IN to a recording file, replay straight into the
 * ingress stream (headers and Nats-Msg-Id kept, so a second replay is de-duplicated) and
 * through a real gateway re-signed with the target's secrets, errors reported with their
 * line number and a non-zero exit, and the replay clock a worker follows.
 */
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AgentReport, HeaderNames, Streams, ingressSubject } from '../../contracts/index.ts';
import {
  REPLAY_CLOCK_STREAM,
  REPLAY_CLOCK_SUBJECT,
  decodeReplayTick,
  followReplayClock,
} from '../../actors/runtime/clock.ts';
import { agentTokenVerifier } from '../../gateway/index.ts';
import { natsReplayClock } from '../../deploy/replay/clock.ts';
import { runCli } from '../../deploy/replay/cli.ts';
import {
  RECORDED_TIME_HEADER,
  parseRecordedLine,
  parseRecordingHeader,
} from '../../deploy/replay/format.ts';
import {
  RAZORPAY_SECRET,
  TELEGRAM_SECRET,
  startBus,
  startGateway,
  testConfig,
  type Bus,
  type RunningTestGateway,
} from '../gateway/support.ts';
import { eventually, quietLog, streamMessages } from '../support/runtime-env.ts';

const AGENT_SECRET = 'target-agent-master-secret-0123456789abcdef';
const RECORDED_AT = '2026-01-05T18:00:00.000Z';

let source: Bus;
let dir: string;
let file: string;

class Sink {
  text = '';
  isTTY = false;
  write(s: string): boolean {
    this.text += s;
    return true;
  }
}

async function cli(
  argv: string[],
  env: NodeJS.ProcessEnv = {},
): Promise<{ code: number; out: string; err: string }> {
  const stdout = new Sink();
  const stderr = new Sink();
  const code = await runCli(argv, { stdout, stderr, env });
  return { code, out: stdout.text, err: stderr.text };
}

const update = (id: number, text: string): string =>
  JSON.stringify({
    update_id: id,
    message: {
      message_id: id,
      date: 0,
      from: { id: 4242, is_bot: false, first_name: 'R' },
      chat: { id: 4242, type: 'private' },
      text,
    },
  });
const webhook = JSON.stringify({
  entity: 'event',
  event: 'payment.captured',
  payload: { payment: { entity: { id: 'pay_R1', amount: 10000, status: 'captured' } } },
});
const report = AgentReport.encode({
  id: 'r1',
  vmName: 'vm-4242-1-a1-spotnc4',
  sessionId: '4242-1',
  playerId: '4242',
  kind: 'heartbeat',
  at: RECORDED_AT,
});

/** What the source deployment's gateway stored (as it would: raw body, sender's id). */
const stored: { source: 'telegram' | 'razorpay' | 'agent'; id: string; body: string }[] = [
  { source: 'telegram', id: 'tg-9001', body: update(9001, '/start') },
  { source: 'telegram', id: 'tg-9002', body: update(9002, '/play') },
  { source: 'razorpay', id: 'rzp-evt_R1', body: webhook },
  { source: 'agent', id: 'agent-r1', body: new TextDecoder().decode(report) },
];

beforeAll(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'respawn-replay-cli-'));
  file = path.join(dir, 'day.jsonl');
  source = await startBus();
  for (const [i, m] of stored.entries()) {
    const h = natsHeaders();
    h.set(HeaderNames.traceparent, `00-${'a'.repeat(31)}${i}-${'b'.repeat(16)}-01`);
    // The first was itself replayed: its recorded time is kept by a re-export.
    if (i === 0) h.set(RECORDED_TIME_HEADER, RECORDED_AT);
    await source.js.publish(ingressSubject(m.source), new TextEncoder().encode(m.body), {
      msgID: m.id,
      headers: h,
    });
  }
});
afterAll(async () => {
  await source?.dispose();
  await rm(dir, { recursive: true, force: true });
});

describe('export', () => {
  it('writes the ingress stream as a recording: header, one line per message, original times', async () => {
    const r = await cli(['export', '--nats', source.nats.url, '--out', file, '--from', '1h']);
    expect(r).toMatchObject({ code: 0, err: '' });
    expect(r.out).toMatch(/exported 4 messages/);
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const header = parseRecordingHeader(lines[0]!);
    expect(header).toMatchObject({ format: 'respawn-recording/1', source: 'export' });
    const messages = lines.slice(1).map(parseRecordedLine);
    expect(messages.map((m) => [m.source, m.headers[HeaderNames.msgId]?.[0]])).toEqual(
      stored.map((m) => [m.source, m.id]),
    );
    expect(messages.map((m) => Buffer.from(m.data, 'base64').toString('utf8'))).toEqual(
      stored.map((m) => m.body),
    );
    expect(messages[0]!.time).toBe(RECORDED_AT);
    // The others carry the time JetStream stored them: now-ish.
    expect(Math.abs(Date.parse(messages[1]!.time) - Date.now())).toBeLessThan(60_000);
    expect(messages.map((m) => m.seq)).toEqual([1, 2, 3, 4]);
    expect(header.from).toBe(RECORDED_AT);
  });

  it('exports nothing outside the range, and refuses a time it cannot read', async () => {
    const empty = path.join(dir, 'empty.jsonl');
    const r = await cli(['export', '--nats', source.nats.url, '--out', empty, '--to', '1h']);
    expect(r.code).toBe(0);
    expect((await readFile(empty, 'utf8')).trim().split('\n')).toHaveLength(1);
    const bad = await cli(['export', '--nats', source.nats.url, '--out', empty, '--from', 'soon']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/"soon" is not a time/);
  });
});

describe('play --into stream', () => {
  let target: Bus;
  beforeAll(async () => {
    target = await startBus();
  });
  afterAll(async () => {
    await target?.dispose();
  });

  it('publishes each message with its headers and Nats-Msg-Id; a second replay is de-duplicated', async () => {
    const args = ['play', file, '--into', 'stream', '--nats', target.nats.url, '--speed', 'max'];
    const first = await cli(args);
    expect(first.code).toBe(0);
    expect(first.out).toMatch(/replayed 4 messages \(0 already stored\)/);
    expect(first.err).toMatch(/4\/4 sent/);
    const got = await streamMessages(target.jsm, Streams.ingress.name);
    expect(got.map((m) => [m.subject, m.headers[HeaderNames.msgId]])).toEqual(
      stored.map((m) => [ingressSubject(m.source), m.id]),
    );
    expect(got.map((m) => new TextDecoder().decode(m.data))).toEqual(stored.map((m) => m.body));
    expect(got[1]!.headers[HeaderNames.traceparent]).toMatch(/^00-a+1-b+-01$/);
    expect(got[0]!.headers[RECORDED_TIME_HEADER]).toBe(RECORDED_AT);

    const again = await cli(args);
    expect(again.code).toBe(0);
    expect(again.out).toMatch(/replayed 4 messages \(4 already stored\)/);
    expect((await target.jsm.streams.info(Streams.ingress.name)).state.messages).toBe(4);
  });

  it('reports an unreadable line with its number, sends the rest, and exits non-zero', async () => {
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const broken = path.join(dir, 'broken.jsonl');
    await writeFile(broken, [lines[0], lines[1], '{"seq": "x"}', lines[3]].join('\n') + '\n');
    const other = await startBus();
    try {
      const r = await cli([
        'play',
        broken,
        '--into',
        'stream',
        '--nats',
        other.nats.url,
        '--speed',
        'max',
      ]);
      expect(r.code).toBe(1);
      expect(r.err).toMatch(/error: line 3: seq: /);
      expect(r.out).toMatch(/replayed 2 messages.*errors 1 \(1 unreadable lines\)/);
      expect((await other.jsm.streams.info(Streams.ingress.name)).state.messages).toBe(2);
    } finally {
      await other.dispose();
    }
  });

  it('keeps the recorded pace at 10x and moves the replay clock a worker follows', async () => {
    const paced = path.join(dir, 'paced.jsonl');
    const lines = (await readFile(file, 'utf8')).trim().split('\n');
    const two = [0, 2000].map((offset, i) => {
      const m = parseRecordedLine(lines[i + 1]!);
      return JSON.stringify({
        ...m,
        time: new Date(Date.parse(RECORDED_AT) + offset).toISOString(),
      });
    });
    await writeFile(paced, [lines[0], ...two].join('\n') + '\n');
    const other = await startBus();
    const follower = await followReplayClock({ nc: other.nc, log: quietLog() });
    try {
      expect(follower.started()).toBe(false);
      const t0 = performance.now();
      const r = await cli([
        'play',
        paced,
        '--into',
        'stream',
        '--nats',
        other.nats.url,
        '--speed',
        '10x',
        '--clock',
      ]);
      const took = performance.now() - t0;
      expect(r.code).toBe(0);
      // 2 s recorded at 10x: about 200 ms, not 2 s and not 0.
      expect(took).toBeGreaterThan(180);
      expect(took).toBeLessThan(1_800);
      await eventually('the worker clock at the last message', async () =>
        Promise.resolve(follower.now().toISOString() === '2026-01-05T18:00:02.000Z'),
      );
      const last = await other.jsm.streams.getMessage(REPLAY_CLOCK_STREAM, {
        last_by_subj: REPLAY_CLOCK_SUBJECT,
      });
      expect(decodeReplayTick(last!.data)?.toISOString()).toBe('2026-01-05T18:00:02.000Z');
      // Never backwards: an older time is ignored; a worker started later starts from the stored one.
      await (await natsReplayClock(other.nc)).set(new Date(RECORDED_AT));
      other.nc.publish(
        REPLAY_CLOCK_SUBJECT,
        new TextEncoder().encode('{"at":"2020-01-01T00:00:00.000Z"}'),
      );
      await other.nc.flush();
      expect(follower.now().toISOString()).toBe('2026-01-05T18:00:02.000Z');
      const late = await followReplayClock({ nc: other.nc, log: quietLog() });
      expect(late.started()).toBe(true);
      late.stop();
    } finally {
      follower.stop();
      await other.dispose();
    }
  });
});

describe('play --into http', () => {
  let target: Bus;
  let gateway: RunningTestGateway;
  const env = {
    TELEGRAM_WEBHOOK_SECRET: TELEGRAM_SECRET,
    RAZORPAY_WEBHOOK_SECRET: RAZORPAY_SECRET,
    AGENT_TOKEN_SECRET: AGENT_SECRET,
  };
  beforeAll(async () => {
    target = await startBus();
    gateway = await startGateway(target, {
      config: testConfig(),
      verifyAgent: agentTokenVerifier(AGENT_SECRET),
    });
  });
  afterAll(async () => {
    await gateway?.close();
    await target?.dispose();
  });

  it("re-signs every message with the target's secrets; the gateway stores them under the recorded ids", async () => {
    const r = await cli(
      ['play', file, '--into', 'http', '--gateway', gateway.url, '--speed', 'max'],
      env,
    );
    expect(r.err).not.toMatch(/error:/);
    expect(r.code).toBe(0);
    const got = await streamMessages(target.jsm, Streams.ingress.name);
    expect(got.map((m) => [m.subject, m.headers[HeaderNames.msgId]])).toEqual(
      stored.map((m) => [ingressSubject(m.source), m.id]),
    );
    expect(got.map((m) => new TextDecoder().decode(m.data))).toEqual(stored.map((m) => m.body));
  });

  it('counts what the gateway refuses, with the line, and exits non-zero', async () => {
    const wrong = {
      ...env,
      RAZORPAY_WEBHOOK_SECRET: 'not-the-target-secret',
      AGENT_TOKEN_SECRET: 'x'.repeat(40),
    };
    const r = await cli(
      ['play', file, '--into', 'http', '--gateway', gateway.url, '--speed', 'max'],
      wrong,
    );
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/error: line 4 \(respawn\.in\.razorpay, seq 3\): HTTP 401/);
    expect(r.err).toMatch(/error: line 5 \(respawn\.in\.agent, seq 4\): HTTP 401/);
    expect(r.out).toMatch(/errors 2/);
    const missing = await cli(['play', file, '--into', 'http', '--gateway', gateway.url], {});
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(
      /set TELEGRAM_WEBHOOK_SECRET, RAZORPAY_WEBHOOK_SECRET, AGENT_TOKEN_SECRET/,
    );
  });
});

it('npm run replay -- --help prints the usage and exits 0', async () => {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--import', 'tsx', 'deploy/replay.ts', '--help'],
    { timeout: 30_000 },
  );
  expect(stdout).toMatch(/npm run replay -- export --nats URL --out FILE/);
  expect(stdout).toMatch(/--speed S +original \(default\), Nx \(e\.g\. 10x\) or max/);
});
