/**
 * Deterministic outcome (issue #7): a run of a few hundred players is recorded (its ingress
 * exported to a file), then the file is replayed into an empty deployment; the ledger, the
 * sessions, the billing states and the allocator's decisions come out the same.
 *
 * Both runs are test deployments on the replay clock, driven the same way (`replay` with
 * `step`: per recorded time, clock → idle → send → idle, stopping at each durable timer's
 * due time on the way). The recorded run's input is the player script plus the world's
 * answers (payments, VM agents) decided from its state; the replay's input is the exported
 * file alone: no agent, no payer, only the same fake-cloud seed and capacity schedule.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { exportRecording } from '../../deploy/replay/export.ts';
import { RECORDED_TIME_HEADER, parseRecordedLine } from '../../deploy/replay/format.ts';
import { replay } from '../../deploy/replay/play.ts';
import { openRecording } from '../../deploy/replay/read.ts';
import { startDeployment, type Deployment } from './deployment.ts';
import { outcomeOf, type Outcome } from './outcome.ts';
import { T0, TICK_MS, cloudAt, recordedRunInput } from './world.ts';

const PLAYERS = Number(process.env.REPLAY_TEST_PLAYERS ?? 240);
const TICKS = 40;

let dir: string | undefined;
const running: Deployment[] = [];
afterAll(async () => {
  for (const d of running) await d.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

async function fresh(): Promise<Deployment> {
  const d = await startDeployment();
  running.push(d);
  return d;
}

async function retire(d: Deployment): Promise<void> {
  running.splice(running.indexOf(d), 1);
  await d.stop();
}

function summaryOf(o: Outcome): Record<string, number> {
  const phases: Record<string, number> = {};
  for (const s of Object.values(o.sessions) as { phase: string }[]) {
    phases[s.phase] = (phases[s.phase] ?? 0) + 1;
  }
  const tiers: Record<string, number> = {};
  for (const list of Object.values(o.tiers)) for (const t of list) tiers[t] = (tiers[t] ?? 0) + 1;
  const reasons: Record<string, number> = {};
  for (const r of o.ledger) reasons[String(r.reason)] = (reasons[String(r.reason)] ?? 0) + 1;
  return {
    players: Object.keys(o.sessions).length,
    ledger: o.ledger.length,
    decisions: o.decisions.length,
    ...Object.fromEntries(Object.entries(phases).map(([k, v]) => [`phase:${k}`, v])),
    ...Object.fromEntries(Object.entries(tiers).map(([k, v]) => [`tier:${k}`, v])),
    ...Object.fromEntries(Object.entries(reasons).map(([k, v]) => [`ledger:${k}`, v])),
  };
}

it('replaying a recorded run into an empty deployment yields the same ledger, sessions and allocation decisions', async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'respawn-replay-'));
  const file = path.join(dir, 'recording.jsonl');

  // Run 1: the recorded run.
  const first = await fresh();
  const recordedRun = await replay({
    target: { kind: 'stream', nc: first.nc },
    speed: { mode: 'max' },
    messages: recordedRunInput(first, { players: PLAYERS, ticks: TICKS }),
    clock: first.clock,
    step: { idle: first.probe, onStep: cloudAt(first) },
  });
  expect(recordedRun.errors).toBe(0);
  const exported = await exportRecording({ nc: first.nc, out: file });
  expect(exported.exported).toBe(recordedRun.sent);
  const before = await outcomeOf(first.knex, first.jsm);
  await retire(first);

  // The run did what the script meant: hundreds of players, top-ups and usage charged,
  // Spot and On-Demand, evictions resumed, idle players stopped by their timer.
  const s = summaryOf(before);
  expect(s.players).toBe(PLAYERS);
  expect(s['ledger:topup']).toBeGreaterThan(PLAYERS * 0.85);
  expect(s['ledger:usage']).toBeGreaterThan(PLAYERS * 0.6);
  expect(s['tier:spotnc4']).toBeGreaterThan(PLAYERS * 0.3);
  expect(s['tier:odnc4']).toBeGreaterThan(PLAYERS * 0.05);

  expect(before.stopReasons.idle_timeout).toBeGreaterThan(PLAYERS * 0.1);
  expect(before.stopReasons.player).toBeGreaterThan(PLAYERS * 0.5);
  // Evicted players resumed on a second VM.
  expect(Object.values(before.tiers).filter((t) => t.length >= 2).length).toBeGreaterThan(
    PLAYERS * 0.04,
  );

  // The file: recorded (simulated) times, not the wall time the stream stored them at.
  const lines = (await readFile(file, 'utf8')).trim().split('\n');
  const firstLine = parseRecordedLine(lines[1]!);
  expect(firstLine.time).toBe(new Date(T0).toISOString());
  expect(firstLine.headers[RECORDED_TIME_HEADER]).toEqual([firstLine.time]);
  expect(Date.parse(parseRecordedLine(lines.at(-1)!).time)).toBeLessThan(T0 + TICKS * TICK_MS);

  // Run 2: an empty deployment, the file alone.
  const second = await fresh();
  const recording = await openRecording(file);
  const replayed = await replay({
    target: { kind: 'stream', nc: second.nc },
    speed: { mode: 'max' },
    messages: recording.messages,
    total: recording.count,
    clock: second.clock,
    step: { idle: second.probe, onStep: cloudAt(second) },
  });
  expect(replayed).toMatchObject({ sent: recording.count, errors: 0, duplicates: 0 });
  const after = await outcomeOf(second.knex, second.jsm);

  expect(summaryOf(after)).toEqual(s);
  expect(after.ledger).toEqual(before.ledger);
  expect(after.sessions).toEqual(before.sessions);
  expect(after.billing).toEqual(before.billing);
  expect(after.tiers).toEqual(before.tiers);
  expect(after.decisions).toEqual(before.decisions);
  expect(after.sessionEvents).toEqual(before.sessionEvents);

  // The comparison can fail: one paisa more on one entry is seen.
  const entry = before.ledger.find((r) => r.reason === 'usage')!;
  await second
    .knex('billing_ledger')
    .where({ idempotency_key: entry.idempotency_key })
    .increment('amount_paise', 1);
  expect((await outcomeOf(second.knex, second.jsm)).ledger).not.toEqual(before.ledger);
}, 900_000);
