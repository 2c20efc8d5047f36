/**
 * The allocator's index (book.ts) against plain scans of the same state, over long random
 * sequences of the changes the allocator makes: a drifted index would mean quota overrun or a
 * request served twice, so every answer is compared after every step.
 */
import { describe, expect, it } from 'vitest';
import {
  clearQueue,
  dequeueAt,
  dequeueSession,
  dropReservation,
  enqueueBack,
  enqueueByArrival,
  isQueued,
  knownRequest,
  putReservation,
  reservationsOf,
  reservedCores,
} from './book.ts';
import { initialAllocState, type AllocState, type Reservation } from './state.ts';

const QUOTAS = ['lowPriorityCores', 'standardNCASv3_T4Family'];

/** A small deterministic generator (mulberry32), so a failure replays. */
function rng(seed: number): () => number {
  let a = seed;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function reservation(sessionId: string, allocation: number, quota: string): Reservation {
  return {
    sessionId,
    playerId: `p-${sessionId}`,
    allocation,
    candidate: quota === QUOTAS[0] ? 'spotnc4' : 'odnc4',
    quotaName: quota,
    cores: quota === QUOTAS[0] ? 4 : 8,
    nicName: 'nic',
    status: 'creating',
    tried: [],
    attempts: 0,
    since: '2026-03-01T18:00:00.000Z',
  };
}

function expectMatchesScan(s: AllocState, sessions: readonly string[]): void {
  const all = Object.entries(s.reservations);
  for (const quota of QUOTAS) {
    const sum = all.filter(([, r]) => r.quotaName === quota).reduce((n, [, r]) => n + r.cores, 0);
    expect(reservedCores(s, quota)).toBe(sum);
  }
  for (const id of sessions) {
    const mine = all.filter(([, r]) => r.sessionId === id);
    expect(reservationsOf(s, id).sort()).toEqual(mine.sort());
    expect(isQueued(s, id)).toBe(s.queue.some((q) => q.sessionId === id));
    for (const allocation of [1, 2]) {
      expect(knownRequest(s, id, allocation)).toBe(
        mine.some(([, r]) => r.allocation === allocation) ||
          s.queue.some((q) => q.sessionId === id && q.allocation === allocation),
      );
    }
  }
}

describe('the allocator’s index', () => {
  it('answers as a scan would after every change, over random sequences', () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const next = rng(seed);
      const pick = <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!;
      const sessions = Array.from({ length: 12 }, (_, i) => `s${i}`);
      let s = initialAllocState();
      for (let step = 0; step < 400; step++) {
        const id = pick(sessions);
        const allocation = next() < 0.5 ? 1 : 2;
        const vm = `vm-${id}-a${allocation}-${next() < 0.5 ? 'x' : 'y'}`;
        const op = Math.floor(next() * 9);
        if (op <= 2) putReservation(s, vm, reservation(id, allocation, pick(QUOTAS)));
        else if (op === 3) dropReservation(s, pick([vm, ...Object.keys(s.reservations)]));
        else if (op === 4) {
          enqueueBack(s, { sessionId: id, playerId: 'p', allocation, tried: [], queuedAt: 'x' });
        } else if (op === 5) {
          enqueueByArrival(s, {
            sessionId: id,
            playerId: 'p',
            allocation,
            tried: [],
            queuedAt: 'x',
          });
        } else if (op === 6) {
          // Some entries, anywhere in the line (ascending indexes, as serveQueue gives them).
          const at = s.queue.map((_, i) => i).filter(() => next() < 0.3);
          dequeueAt(s, at);
        } else if (op === 7) {
          const at = dequeueSession(s, id);
          expect(s.queue.some((q) => q.sessionId === id)).toBe(false);
          expect(at).toBeGreaterThanOrEqual(-1);
        } else if (next() < 0.2) clearQueue(s);
        // A state read back from the database is a new object: its index is built afresh.
        else s = JSON.parse(JSON.stringify(s)) as AllocState;
        expectMatchesScan(s, sessions);
      }
    }
  });

  it('tells where a session stood in line when it leaves it', () => {
    const s = initialAllocState();
    for (const id of ['a', 'b', 'c', 'b']) {
      enqueueBack(s, { sessionId: id, playerId: 'p', allocation: 1, tried: [], queuedAt: 'x' });
    }
    expect(dequeueSession(s, 'b')).toBe(1);
    expect(s.queue.map((q) => q.sessionId)).toEqual(['a', 'c']);
    expect(dequeueSession(s, 'b')).toBe(-1);
  });
});
