/**
 * The allocator's reservations and queue, changed in place, with the lookups every request
 * makes (cores reserved per quota, a session's reservations, whether a session is in line)
 * kept in an index beside them instead of found by scanning them.
 *
 * The allocator is one hot key: a burst of thousands of requests reaches it in batches of
 * hundreds. Copying the reservations for every decision and summing them for every quota
 * check made each decision cost O(reservations): bench:allocation with 4,000 players spent
 * half its CPU there. The runtime gives the allocator a state only its batch holds
 * (`mutatesState`), so the handler changes it in place, and every change goes through the
 * functions here, which keep the index true. The index lives in a WeakMap keyed by the
 * reservations object and the queue array: a state read from the database (a new object)
 * gets a new index, built once in one pass.
 */
import type { AllocState, QueueEntry, Reservation } from './state.ts';

type Reservations = AllocState['reservations'];

interface ReservationIndex {
  /** Cores reserved per usage name. */
  cores: Map<string, number>;
  /** VM names per session id. */
  sessions: Map<string, Set<string>>;
}

const reservationIndexes = new WeakMap<Reservations, ReservationIndex>();
/** Queue entries per session id. */
const queueIndexes = new WeakMap<QueueEntry[], Map<string, number>>();

function indexAdd(ix: ReservationIndex, vmName: string, r: Reservation): void {
  ix.cores.set(r.quotaName, (ix.cores.get(r.quotaName) ?? 0) + r.cores);
  let names = ix.sessions.get(r.sessionId);
  if (names === undefined) {
    names = new Set();
    ix.sessions.set(r.sessionId, names);
  }
  names.add(vmName);
}

function indexRemove(ix: ReservationIndex, vmName: string, r: Reservation): void {
  ix.cores.set(r.quotaName, (ix.cores.get(r.quotaName) ?? 0) - r.cores);
  const names = ix.sessions.get(r.sessionId);
  names?.delete(vmName);
  if (names?.size === 0) ix.sessions.delete(r.sessionId);
}

function reservationIndex(rs: Reservations): ReservationIndex {
  let ix = reservationIndexes.get(rs);
  if (ix === undefined) {
    ix = { cores: new Map(), sessions: new Map() };
    for (const vmName in rs) indexAdd(ix, vmName, rs[vmName]!);
    reservationIndexes.set(rs, ix);
  }
  return ix;
}

function queueIndex(queue: QueueEntry[]): Map<string, number> {
  let ix = queueIndexes.get(queue);
  if (ix === undefined) {
    ix = new Map();
    for (const q of queue) ix.set(q.sessionId, (ix.get(q.sessionId) ?? 0) + 1);
    queueIndexes.set(queue, ix);
  }
  return ix;
}

/** Cores of one quota taken by our reservations (creating, running or being deleted). */
export function reservedCores(s: AllocState, quotaName: string): number {
  return reservationIndex(s.reservations).cores.get(quotaName) ?? 0;
}

/** Adds or replaces the reservation of `vmName`. */
export function putReservation(s: AllocState, vmName: string, r: Reservation): void {
  const ix = reservationIndex(s.reservations);
  const before = s.reservations[vmName];
  if (before !== undefined) indexRemove(ix, vmName, before);
  s.reservations[vmName] = r;
  indexAdd(ix, vmName, r);
}

export function dropReservation(s: AllocState, vmName: string): void {
  const before = s.reservations[vmName];
  if (before === undefined) return;
  indexRemove(reservationIndex(s.reservations), vmName, before);
  delete s.reservations[vmName];
}

/** The reservations a session holds, by VM name. */
export function reservationsOf(s: AllocState, sessionId: string): [string, Reservation][] {
  const names = reservationIndex(s.reservations).sessions.get(sessionId);
  if (names === undefined) return [];
  return [...names].map((n) => [n, s.reservations[n]!]);
}

export function isQueued(s: AllocState, sessionId: string): boolean {
  return queueIndex(s.queue).has(sessionId);
}

/**
 * A later allocation round of the session than `allocation`, reserved or waiting in line: a
 * request older than that (redelivered, re-injected) must not get the session a second VM.
 */
export function laterRound(
  s: AllocState,
  sessionId: string,
  allocation: number,
): number | undefined {
  let later: number | undefined;
  for (const [, r] of reservationsOf(s, sessionId)) {
    if (r.allocation > allocation) later = Math.max(later ?? 0, r.allocation);
  }
  if (isQueued(s, sessionId)) {
    for (const q of s.queue) {
      if (q.sessionId === sessionId && q.allocation > allocation) {
        later = Math.max(later ?? 0, q.allocation);
      }
    }
  }
  return later;
}

/** Whether this allocation round of the session is reserved or waiting in line already. */
export function knownRequest(s: AllocState, sessionId: string, allocation: number): boolean {
  return (
    reservationsOf(s, sessionId).some(([, r]) => r.allocation === allocation) ||
    (isQueued(s, sessionId) &&
      s.queue.some((q) => q.sessionId === sessionId && q.allocation === allocation))
  );
}

export function enqueueBack(s: AllocState, q: QueueEntry): void {
  const ix = queueIndex(s.queue);
  s.queue.push(q);
  ix.set(q.sessionId, (ix.get(q.sessionId) ?? 0) + 1);
}

/**
 * Puts `q` back in line by when it asked (a request whose rig failed keeps its place: behind
 * those who asked before it, ahead of those who asked after); returns its index.
 */
export function enqueueByArrival(s: AllocState, q: QueueEntry): number {
  const ix = queueIndex(s.queue);
  // Ahead of those who asked at the same moment: it was served before them then.
  let at = s.queue.findIndex((e) => e.queuedAt >= q.queuedAt);
  if (at < 0) at = s.queue.length;
  s.queue.splice(at, 0, q);
  ix.set(q.sessionId, (ix.get(q.sessionId) ?? 0) + 1);
  return at;
}

function forget(ix: Map<string, number>, sessionId: string): void {
  const n = (ix.get(sessionId) ?? 0) - 1;
  if (n > 0) ix.set(sessionId, n);
  else ix.delete(sessionId);
}

/** Takes the entries at these indexes (ascending) out of the line. */
export function dequeueAt(s: AllocState, indexes: readonly number[]): void {
  if (indexes.length === 0) return;
  const ix = queueIndex(s.queue);
  for (let k = indexes.length - 1; k >= 0; k--) {
    const [q] = s.queue.splice(indexes[k]!, 1);
    if (q !== undefined) forget(ix, q.sessionId);
  }
}

/** Takes a session's entries out of the line; the index of the first, or -1. */
export function dequeueSession(s: AllocState, sessionId: string): number {
  if (!isQueued(s, sessionId)) return -1;
  const ix = queueIndex(s.queue);
  const at = s.queue.findIndex((q) => q.sessionId === sessionId);
  for (let i = s.queue.length - 1; i >= at; i--) {
    if (s.queue[i]!.sessionId !== sessionId) continue;
    s.queue.splice(i, 1);
    forget(ix, sessionId);
  }
  return at;
}

export function clearQueue(s: AllocState): QueueEntry[] {
  const was = s.queue.splice(0, s.queue.length);
  queueIndexes.delete(s.queue);
  return was;
}

/**
 * A release that found nothing: its request may still be on its way (a worker died between
 * the two). Remembered so that request, or an earlier round's, is refused when it comes.
 */
export function rememberReleased(
  s: AllocState,
  sessionId: string,
  allocation: number,
  now: Date,
): void {
  const was = s.released?.[sessionId];
  if (was !== undefined && was.allocation >= allocation) return;
  s.released = { ...s.released, [sessionId]: { allocation, at: now.toISOString() } };
}

/** The round of this session released before its request arrived, if any. */
export function releasedRound(s: AllocState, sessionId: string): number | undefined {
  return s.released?.[sessionId]?.allocation;
}

/** Forgets releases remembered before `before` (a request that late is handled by the session). */
export function forgetReleased(s: AllocState, before: Date): void {
  if (s.released === undefined) return;
  const keep = Object.entries(s.released).filter(([, r]) => Date.parse(r.at) >= before.getTime());
  if (keep.length === Object.keys(s.released).length) return;
  if (keep.length === 0) delete s.released;
  else s.released = Object.fromEntries(keep);
}
