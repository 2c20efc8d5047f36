/**
 * Placement: which candidate a request gets, within quota. Pure functions over the state;
 * the allocator actor turns their decisions into messages.
 */
import { nameHash, plainNameId } from '../../contracts/index.ts';
import { reservedCores } from './book.ts';
import type { AllocState, AllocatorConfig, Candidate, QueueEntry, Reservation } from './state.ts';

export { reservedCores } from './book.ts';

/** Cores still free in a quota; undefined while Azure has not reported it yet. */
export function freeCores(s: AllocState, quotaName: string): number | undefined {
  const u = s.usage[quotaName];
  if (u === undefined) return undefined;
  return u.limit - (s.external[quotaName] ?? 0) - reservedCores(s, quotaName);
}

export function isCold(s: AllocState, candidateId: string, now: Date): boolean {
  const until = s.cold[candidateId];
  return until !== undefined && Date.parse(until) > now.getTime();
}

/**
 * The first candidate the player's policy allows (Spot only, or any), that fits the disk's
 * zone, is not cold, not tried, and within quota.
 */
export function pickCandidate(
  cfg: AllocatorConfig,
  s: AllocState,
  req: { diskZone?: string | undefined; tried: readonly string[]; spotOnly?: true | undefined },
  now: Date,
): Candidate | undefined {
  for (const c of cfg.candidates) {
    if (req.spotOnly === true && c.tier !== 'spot') continue;
    if (req.diskZone !== undefined && c.zone !== undefined && c.zone !== req.diskZone) continue;
    if (req.tried.includes(c.id) || isCold(s, c.id, now)) continue;
    const free = freeCores(s, c.quotaName);
    if (free !== undefined && free >= c.cores) return c;
  }
  return undefined;
}

/**
 * VM names derive from the session, the allocation round and the candidate: a retried
 * create converges on the same VM; another candidate or a resume gets another name. A session
 * id that is not plain (upper case or `_`, which Azure would fold or refuse) or too long is
 * replaced by `h` and its hash, which no plain session id (`<player>-<n>`) can spell.
 */
export function vmNameFor(sessionId: string, allocation: number, candidateId: string): string {
  const cand = candidateId.toLowerCase().replace(/_/g, '-');
  const name = `vm-${sessionId}-a${allocation}-${cand}`;
  return plainNameId(sessionId) && name.length <= 60
    ? name
    : `vm-h${nameHash(sessionId)}-a${allocation}-${cand}`.slice(0, 60);
}

/**
 * The name of a new VM for `q` on `c`: `vmNameFor`, or, while a VM of that name is still held
 * or being deleted (a failed create's VM, when the candidate is tried again for the same
 * round), the same with `-2`, `-3`…: a create under the name of a VM being deleted would be a
 * conflict in Azure, and the delete's report would be taken for the new VM's.
 */
export function freeVmName(s: AllocState, q: QueueEntry, c: Candidate): string {
  const taken = (name: string): boolean =>
    s.reservations[name] !== undefined || s.partials?.[name] !== undefined;
  const base = vmNameFor(q.sessionId, q.allocation, c.id);
  if (!taken(base)) return base;
  for (let n = 2; ; n++) {
    const name = `${base}-${n}`;
    if (!taken(name)) return name;
  }
}

export function reservationFor(
  s: AllocState,
  q: QueueEntry,
  c: Candidate,
  now: Date,
): { vmName: string; reservation: Reservation } {
  const vmName = freeVmName(s, q, c);
  return {
    vmName,
    reservation: {
      sessionId: q.sessionId,
      playerId: q.playerId,
      allocation: q.allocation,
      candidate: c.id,
      quotaName: c.quotaName,
      cores: c.cores,
      nicName: `${vmName}-nic`,
      status: 'creating',
      tried: q.tried,
      ...(q.diskZone === undefined ? {} : { diskZone: q.diskZone }),
      ...(q.spotOnly === true ? { spotOnly: true as const } : {}),
      attempts: 0,
      since: now.toISOString(),
      queuedAt: q.queuedAt,
    },
  };
}

/** The earliest moment a cold candidate warms up again, if any is cold. */
export function nextWarmUp(s: AllocState, now: Date): Date | undefined {
  let best: number | undefined;
  for (const until of Object.values(s.cold)) {
    const t = Date.parse(until);
    if (t > now.getTime() && (best === undefined || t < best)) best = t;
  }
  return best === undefined ? undefined : new Date(best);
}
