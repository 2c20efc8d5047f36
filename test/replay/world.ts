/**
 * The recorded run's inputs: a deterministic script of Telegram updates for N players over
 * a simulated period, and the world's answers to what the deployment did, decided from its
 * state once it is idle at each tick:
 * - the Razorpay "player" pays every payment link billing created (the fake's webhook events
 *   go to `respawn.in.razorpay` as the gateway stores them: raw body, `rzp-<event id>`);
 * - a VM agent reports `ready` for every session VM the ARM fake finished creating, then
 *   heartbeats every other tick (with input, unless the player is one of the idle ones), and
 *   relays a Preempt for the players scheduled to be evicted;
 * - Spot capacity goes away for one tick (`cloudAt`), the same in the replay (`onStep`).
 * Every message carries the tick's time; report ids derive from VM names and ticks.
 */
import {
  AgentReport,
  IngressSources,
  ingressSubject,
  topupCallbackData,
  type IngressSource,
} from '../../contracts/index.ts';
import { HeaderNames } from '../../contracts/index.ts';
import type { RecordedMessage } from '../../deploy/replay/format.ts';
import { waitUntilIdle } from '../../deploy/replay/idle.ts';
import type { Deployment } from './deployment.ts';

export const T0 = Date.parse('2026-01-05T18:00:00.000Z');
export const TICK_MS = 30_000;
export const tickTime = (k: number): number => T0 + k * TICK_MS;

/** Spot has no capacity during this tick (AllocationFailed), in both runs. */
const OUTAGE_TICK = 20;

export interface ScriptOptions {
  players: number;
  ticks: number;
}

const playerId = (i: number): number => 7_000_000 + i;
const idle = (i: number): boolean => i % 6 === 5;
const broke = (i: number): boolean => i % 10 === 9;
const evicted = (i: number): boolean => i % 13 === 0;
const offset = (i: number): number => i % 6;

interface Update {
  k: number;
  order: number;
  body: Record<string, unknown>;
}

function message(i: number, updateId: number, text: string): Record<string, unknown> {
  const id = playerId(i);
  return {
    update_id: updateId,
    message: {
      message_id: updateId,
      date: 0,
      from: { id, is_bot: false, first_name: `P${i}` },
      chat: { id, type: 'private' },
      text,
    },
  };
}

function button(i: number, updateId: number, data: string): Record<string, unknown> {
  const id = playerId(i);
  return {
    update_id: updateId,
    callback_query: {
      id: `cq${updateId}`,
      from: { id, is_bot: false, first_name: `P${i}` },
      message: { message_id: 1, date: 0, chat: { id, type: 'private' } },
      data,
    },
  };
}

/**
 * The players' side: what each types or presses, at which tick. Player 0 plays first, alone
 * (the allocator's first request waits for Azure's usage); the last player starts alone in
 * the Spot outage (OUTAGE_TICK), after which Spot stays cold for the allocator's coldMs, so
 * the second sessions some players start later go On-Demand.
 */
export function scriptUpdates(o: ScriptOptions): Update[] {
  const out: Update[] = [];
  let updateId = 100_000;
  const at = (k: number, i: number, body: (u: number) => Record<string, unknown>): void => {
    if (k < o.ticks) out.push({ k, order: i, body: body(++updateId) });
  };
  const last = o.players - 1;
  for (let i = 0; i < o.players; i++) {
    const a = offset(i);
    at(a, i, (u) => message(i, u, '/start'));
    if (!broke(i) || i === last)
      at(i === 0 ? 0 : a + 1, i, (u) => button(i, u, topupCallbackData(10_000)));
    const play = i === 0 ? 2 : i === last ? OUTAGE_TICK : a + 3;
    at(play, i, (u) => message(i, u, '/play'));
    // A double click: the second start must be answered "already starting", not a second VM.
    if (i % 7 === 0) at(play, i, (u) => button(i, u, 'play'));
    if (i % 5 === 0) at(play + 1, i, (u) => message(i, u, '/status'));
    if (i % 4 === 0) at(a + 12, i, (u) => message(i, u, '/balance'));
    if (!idle(i) && i !== last) at(a + 16 + (i % 11), i, (u) => message(i, u, '/stop'));
    // A second session, started while Spot is cold.
    if (i % 8 === 7 && i !== last) at(OUTAGE_TICK + 8 + a, i, (u) => message(i, u, '/play'));
    if (i % 3 === 0) at(a + 30, i, (u) => message(i, u, '/history'));
  }
  return out.sort((x, y) => x.k - y.k || x.order - y.order);
}

function recorded(
  source: IngressSource,
  msgId: string,
  body: string | Uint8Array,
  k: number,
): Omit<RecordedMessage, 'seq'> {
  return {
    time: new Date(tickTime(k)).toISOString(),
    source,
    subject: ingressSubject(source),
    headers: { [HeaderNames.msgId]: [msgId] },
    data: Buffer.from(body).toString('base64'),
  };
}

/** The fake cloud's schedule: what `replay`'s onStep applies at each step, in both runs. */
export function cloudAt(dep: Deployment): (at: Date) => Promise<void> {
  let out = false;
  return (at) => {
    const k = Math.floor((at.getTime() - T0) / TICK_MS);
    const want = k === OUTAGE_TICK;
    if (want !== out) {
      dep.arm.setCapacity(
        want ? [{ priority: 'Spot', available: 0, code: 'AllocationFailed' }] : [],
      );
      out = want;
    }
    return Promise.resolve();
  };
}

/**
 * The recorded run's input as a lazy stream for `replay`: before the messages of tick k it
 * waits until the deployment is idle (everything of tick k-1 handled), then decides the
 * world's answers from the deployment's state.
 */
export async function* recordedRunInput(
  dep: Deployment,
  o: ScriptOptions,
): AsyncGenerator<RecordedMessage> {
  const updates = scriptUpdates(o);
  const reported = new Map<string, { player: number; since: number }>();
  const paid = new Set<string>();
  const preempted = new Set<string>();
  let seq = 0;
  let u = 0;
  for (let k = 0; k < o.ticks; k++) {
    const batch: Omit<RecordedMessage, 'seq'>[] = [];
    if (k > 0) await waitUntilIdle(dep.probe, new Date(tickTime(k - 1)), { timeoutMs: 120_000 });
    for (; u < updates.length && updates[u]!.k === k; u++) {
      const up = updates[u]!;
      batch.push(
        recorded(
          IngressSources.telegram,
          `tg-${String(up.body.update_id)}`,
          JSON.stringify(up.body),
          k,
        ),
      );
    }
    // Payments for the links billing created (sorted: the fake's list order is its own).
    const links = dep.razorpay
      .links()
      .filter((l) => l.status === 'created' && !paid.has(l.id))
      .sort((x, y) => x.reference_id.localeCompare(y.reference_id));
    for (const link of links) {
      paid.add(link.id);
      const r = await dep.razorpay.pay(link.id, { deliver: false });
      for (const e of r.events) {
        batch.push(recorded(IngressSources.razorpay, `rzp-${e.eventId}`, e.body, k));
      }
    }
    // The agents of the session VMs.
    const vms = dep.arm.state
      .vms()
      .filter((v) => v.tags.purpose === 'respawn-session')
      .sort((x, y) => x.name.localeCompare(y.name));
    const at = new Date(tickTime(k)).toISOString();
    for (const vm of vms) {
      const player = Number(vm.tags.player) - 7_000_000;
      const base = {
        vmName: vm.name,
        sessionId: vm.tags.session ?? '',
        playerId: vm.tags.player ?? '',
        at,
      };
      const seen = reported.get(vm.name);
      if (seen === undefined) {
        if (vm.provisioningState !== 'Succeeded') continue;
        reported.set(vm.name, { player, since: k });
        const nic = vm.nics[0] === undefined ? undefined : dep.arm.state.nic(vm.nics[0].name);
        const report = AgentReport.encode({
          ...base,
          id: `ready-${vm.name}`,
          kind: 'ready',
          host: nic?.privateIp ?? '10.9.9.9',
          port: 47989,
          pin: String(1000 + (player % 9000)),
        });
        batch.push(recorded(IngressSources.agent, `agent-ready-${vm.name}`, report, k));
        continue;
      }
      if (evicted(player) && !preempted.has(vm.name) && k === seen.since + 5) {
        preempted.add(vm.name);
        const report = AgentReport.encode({
          ...base,
          id: `preempt-${vm.name}`,
          kind: 'preempt',
          eventId: `ev-${vm.name}`,
          notBefore: new Date(tickTime(k) + 30_000).toISOString(),
        });
        batch.push(recorded(IngressSources.agent, `agent-preempt-${vm.name}`, report, k));
        continue;
      }
      if (preempted.has(vm.name) || (k - seen.since) % 2 !== 0) continue;
      const report = AgentReport.encode({
        ...base,
        id: `hb-${vm.name}-${k}`,
        kind: 'heartbeat',
        ...(idle(player) ? {} : { lastInputAt: at }),
      });
      batch.push(recorded(IngressSources.agent, `agent-hb-${vm.name}-${k}`, report, k));
    }
    for (const m of batch) yield { ...m, seq: ++seq };
  }
}
