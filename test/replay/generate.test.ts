/**
 * The synthetic workload generator: reproducible to the byte, every line what the gateway
 * would have stored (the routers' own decoders accept it), proportions near what was asked,
 * and the injected bad inputs exactly the ones the routers dead-letter.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { routeRazorpayWebhook } from '../../actors/ingress/razorpay-route.ts';
import { routeTelegramUpdate } from '../../actors/ingress/telegram-route.ts';
import { TerminalError, decodeTelegramUpdate } from '../../contracts/index.ts';
import {
  parseRecordedLine,
  parseRecordingHeader,
  type RecordedMessage,
} from '../../deploy/replay/format.ts';
import {
  BAD_DLQ_SUBJECT,
  generate,
  generateRecording,
  type BadKind,
} from '../../deploy/replay/generate.ts';
import { parseGenerateArgs } from '../../deploy/replay/generate-cli.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'respawn-generate-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const sha = async (file: string): Promise<string> =>
  createHash('sha256')
    .update(await readFile(file))
    .digest('hex');

const bytes = (m: RecordedMessage): Uint8Array => Buffer.from(m.data, 'base64');
const msgId = (m: RecordedMessage): string => m.headers['Nats-Msg-Id']?.[0] ?? '';

/** What the ingress router would do with a stored message: its dead-letter subject, or none. */
function deadLetterOf(m: RecordedMessage): string | undefined {
  if (m.source === 'razorpay') {
    const r = routeRazorpayWebhook(bytes(m), msgId(m));
    return r.kind === 'dead' ? `respawn.dlq.razorpay.${r.code}` : undefined;
  }
  try {
    routeTelegramUpdate(bytes(m));
    return undefined;
  } catch (err) {
    if (err instanceof TerminalError) return `respawn.dlq.telegram.${err.code}`;
    throw err;
  }
}

describe('synthetic workload generator', () => {
  const opts = { players: 3000, hours: 24, seed: 42 };
  const g = generate(opts);
  const badIds = new Set(g.bad.map((b) => b.msgId));
  /** The good Telegram messages (the bad ones are checked in their own test). */
  const good = (m: RecordedMessage): boolean => m.source === 'telegram' && !badIds.has(msgId(m));

  it('writes a byte-identical file for the same seed, and a different one for another seed', async () => {
    const a = path.join(dir, 'a.jsonl');
    const b = path.join(dir, 'b.jsonl');
    const c = path.join(dir, 'c.jsonl');
    await generateRecording({ ...opts, players: 500, path: a });
    await generateRecording({ ...opts, players: 500, path: b });
    await generateRecording({ ...opts, players: 500, seed: 43, path: c });
    expect(await sha(a)).toBe(await sha(b));
    expect(await sha(a)).not.toBe(await sha(c));
  });

  it('writes lines that parse as the recording format, in time order, with rising sequence numbers', async () => {
    const file = path.join(dir, 'fmt.jsonl');
    const r = await generateRecording({ ...opts, players: 400, path: file });
    const lines = (await readFile(file, 'utf8')).trimEnd().split('\n');
    const header = parseRecordingHeader(lines[0]!);
    expect(header.source).toBe('generator');
    const messages = lines.slice(1).map(parseRecordedLine);
    expect(messages).toHaveLength(r.count);
    const from = Date.parse(header.from);
    const to = Date.parse(header.to);
    messages.forEach((m, i) => {
      expect(m.seq).toBe(i + 1);
      const t = Date.parse(m.time);
      expect(t).toBeGreaterThanOrEqual(from);
      expect(t).toBeLessThan(to);
      if (i > 0) expect(t).toBeGreaterThanOrEqual(Date.parse(messages[i - 1]!.time));
      expect(m.subject).toBe(`respawn.in.${m.source}`);
    });
  });

  it('gives every message what the gateway would have stored, which the routers decode', () => {
    const ids = new Set<string>();
    const updateIds: number[] = [];
    let routedTopups = 0;
    let credits = 0;
    for (const m of g.messages) {
      const id = msgId(m);
      if (m.source === 'telegram') {
        // The gateway's own envelope check (update_id) and id: tg-<update_id>.
        const raw = JSON.parse(Buffer.from(bytes(m)).toString('utf8')) as { update_id: number };
        expect(id).toBe(`tg-${raw.update_id}`);
        updateIds.push(raw.update_id);
        if (!badIds.has(id)) {
          const u = decodeTelegramUpdate(bytes(m));
          const cmds = routeTelegramUpdate(bytes(m));
          expect(u.update_id).toBe(raw.update_id);
          routedTopups += cmds.filter((c) => c.type === 'billing.topup.v1').length;
        }
      } else {
        expect(m.source).toBe('razorpay');
        expect(id).toMatch(/^rzp-evt_[A-Za-z0-9]{14}$/);
        if (!badIds.has(id)) {
          const r = routeRazorpayWebhook(bytes(m), id);
          expect(r.kind, JSON.stringify(r)).toBe('publish');
          if (r.kind === 'publish' && r.event !== 'payment.failed') credits++;
        }
      }
      // A Razorpay retry repeats its event id (JetStream or billing drops it); nothing else repeats.
      if (ids.has(id)) expect(m.source).toBe('razorpay');
      ids.add(id);
    }
    expect(updateIds).toEqual([...updateIds].sort((a, b) => a - b));
    expect(new Set(updateIds).size).toBe(updateIds.length);
    expect(routedTopups).toBeGreaterThan(0);
    expect(credits).toBeGreaterThan(0);
  });

  it('sends each captured payment to the top-up its button created, with the top-up amount', () => {
    const buttons = new Map<string, number>();
    for (const m of g.messages.filter(good)) {
      for (const c of routeTelegramUpdate(bytes(m))) {
        if (c.type !== 'billing.topup.v1') continue;
        const v = JSON.parse(Buffer.from(c.data).toString('utf8')) as {
          requestId: string;
          amountPaise: number;
        };
        buttons.set(`${c.subject.split('.')[2]}/${v.requestId}`, v.amountPaise);
      }
    }
    let checked = 0;
    for (const m of g.messages) {
      if (m.source !== 'razorpay') continue;
      const r = routeRazorpayWebhook(bytes(m), msgId(m));
      if (r.kind !== 'publish') continue;
      expect(buttons.get(`${r.playerId}/${r.message.topupId}`)).toBe(r.message.amountPaise);
      checked++;
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('keeps the configured proportions roughly', () => {
    const c = g.tally;
    expect(c.activePlayers / opts.players).toBeGreaterThan(0.6);
    expect(c.activePlayers / opts.players).toBeLessThan(0.7);
    expect(c.idlePlayers.length / c.activePlayers).toBeGreaterThan(0.05);
    expect(c.idlePlayers.length / c.activePlayers).toBeLessThan(0.11);
    expect(c.doubleClicks / c.plays).toBeGreaterThan(0.05);
    expect(c.doubleClicks / c.plays).toBeLessThan(0.11);
    expect(c.abandonedStarts / c.plays).toBeGreaterThan(0.03);
    expect(c.abandonedStarts / c.plays).toBeLessThan(0.07);
    expect(c.webhookRetries / c.paymentsCaptured).toBeGreaterThan(0.07);
    expect(c.webhookRetries / c.paymentsCaptured).toBeLessThan(0.13);
    expect(c.insufficientStarts).toBeGreaterThan(0);
    // Evening peak: more session starts 19:00–23:00 IST than 01:00–09:00 IST.
    const starts = g.messages.filter((m) => {
      if (!good(m)) return false;
      const cmds = routeTelegramUpdate(bytes(m));
      return cmds.some((x) => x.type === 'session.start.v1');
    });
    const hourIst = (m: RecordedMessage): number =>
      new Date(Date.parse(m.time) + 330 * 60_000).getUTCHours();
    const evening = starts.filter((m) => hourIst(m) >= 19 && hourIst(m) < 23).length;
    const night = starts.filter((m) => hourIst(m) >= 1 && hourIst(m) < 9).length;
    expect(evening).toBeGreaterThan(3 * night);
    expect(evening / starts.length).toBeGreaterThan(0.3);
  });

  it('injects exactly the counted bad inputs, and each is dead-lettered where the header says', () => {
    const meta = g.header.meta as { bad: { count: number; bySubject: Record<string, number> } };
    expect(g.bad.length).toBeGreaterThan(10);
    expect(meta.bad.count).toBe(g.bad.length);
    const kinds = new Set(g.bad.map((b) => b.kind));
    expect(kinds.size).toBe(Object.keys(BAD_DLQ_SUBJECT).length);
    const expected = new Map(g.bad.map((b) => [b.msgId, b.dlqSubject]));
    const seen = new Map<string, string>();
    for (const m of g.messages) {
      const dlq = deadLetterOf(m);
      if (dlq !== undefined) seen.set(msgId(m), dlq);
    }
    expect(seen).toEqual(expected);
    const bySubject: Record<string, number> = {};
    for (const s of seen.values()) bySubject[s] = (bySubject[s] ?? 0) + 1;
    expect(bySubject).toEqual(meta.bad.bySubject);
    for (const [kind, n] of Object.entries(g.tally.bad)) {
      expect(g.bad.filter((b) => b.kind === (kind as BadKind))).toHaveLength(n);
    }
  });

  it('names a bad argument instead of writing anything', () => {
    expect(() => parseGenerateArgs(['--out', 'x', '--players', 'many'])).toThrow(/--players/);
    expect(() => parseGenerateArgs(['--players', '5'])).toThrow(/--out/);
    expect(() => parseGenerateArgs(['--out', 'x', '--from', 'yesterday'])).toThrow(/--from/);
    expect(parseGenerateArgs(['--out', 'x', '--players', '5', '--seed', '9'])).toEqual({
      path: 'x',
      players: 5,
      seed: 9,
    });
  });
});
