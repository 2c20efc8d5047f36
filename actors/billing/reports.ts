/**
 * A meter computed from what the session reported: its open, each pause (an eviction), each
 * resume and its close. The session sends them in that order, but billing may receive them in
 * another (an outbox row published late overtakes the ones before it); kept as a set and
 * metered from all of them, a late report corrects the meter, even after the close.
 *
 * The rigs: the open starts the first, each resume (in time order) the next, never before the
 * pause that ended the one before (a resume stamped earlier counts from the pause). A rig ends
 * at the earliest pause not taken by an earlier rig. A pause stamped before the next resume that
 * arrived before it is an eviction of a VM that never became ready (the session sends one when
 * a booting VM is evicted): it ends nothing. While a rig's pause is still on its way, the rig
 * ends at the next resume (the session sent the pause first), or, with none, runs now. The
 * close ends every rig. A rig whose start has not arrived is not charged until it does.
 */
import type { Tier } from '../../contracts/index.ts';
import { openMeter } from './meter.ts';
import type { Meter, MeterReports, MeterStart } from './state.ts';

const ms = (isoTime: string): number => new Date(isoTime).getTime();
const iso = (t: number): string => new Date(t).toISOString();

interface Rig {
  start: number;
  /** Undefined: running now. */
  end: number | undefined;
  from: MeterStart;
}

/** The reports of `m`; a meter from before reports were kept reads as opened where it stands. */
export function reportsOf(m: Meter): MeterReports {
  if (m.reports !== undefined) return m.reports;
  const since = m.runningSince ?? m.pausedAt ?? m.openedAt;
  return {
    open: { at: since, tier: m.tier, pricePerHourPaise: m.pricePerHourPaise, n: 0 },
    pauses: m.runningSince === null ? [{ at: since, n: 1 }] : [],
    resumes: [],
    received: 2,
    baseUnits: m.accruedUnits,
  };
}

function rigsOf(r: MeterReports): Rig[] {
  const closed = r.closedAt === undefined ? undefined : ms(r.closedAt);
  const rigs: Rig[] = [];
  let i = 0;
  let paused: number | undefined;
  for (const [k, from] of [r.open, ...r.resumes].entries()) {
    const next = r.resumes[k];
    const pause = r.pauses[i];
    if (pause !== undefined) i++;
    let end = pause === undefined ? (next === undefined ? undefined : ms(next.at)) : ms(pause.at);
    while (next !== undefined) {
      const stray = r.pauses[i];
      if (stray === undefined || ms(stray.at) >= ms(next.at) || stray.n > next.n) break;
      i++;
    }
    if (from !== undefined) {
      let start = paused === undefined ? ms(from.at) : Math.max(ms(from.at), paused);
      if (closed !== undefined) {
        start = Math.min(start, closed);
        end = end === undefined ? closed : Math.min(end, closed);
      }
      rigs.push({ start, end, from });
    }
    paused = pause === undefined ? undefined : ms(pause.at);
  }
  return rigs;
}

/** `m` with `reports`, its accrued units, running segment and price computed from them. */
export function metered(m: Meter, reports: MeterReports): Meter {
  const rigs = rigsOf(reports);
  let units = reports.baseUnits;
  for (const g of rigs) {
    if (g.end === undefined) continue;
    units += Math.max(0, Math.floor((g.end - g.start) / 1000)) * g.from.pricePerHourPaise;
  }
  const last = rigs.at(-1);
  const running = last?.end === undefined ? last : undefined;
  return {
    ...m,
    reports,
    tier: last?.from.tier ?? m.tier,
    pricePerHourPaise: last?.from.pricePerHourPaise ?? m.pricePerHourPaise,
    accruedUnits: units,
    runningSince: running === undefined ? null : iso(running.start),
    pausedAt: running !== undefined || last?.end === undefined ? null : iso(last.end),
  };
}

/** A start as reported: the open's or a resume's time, tier and price. */
export interface Reported {
  at: string;
  tier: Tier;
  pricePerHourPaise: number;
}

/** A new meter from its first start (its open, or a resume whose open has not come). */
export function newMeter(
  sessionId: string,
  first: Reported,
  add: (r: MeterReports) => MeterReports,
): Meter {
  const m = openMeter(sessionId, first.tier, first.pricePerHourPaise, first.at);
  return metered(m, add({ pauses: [], resumes: [], received: 0, baseUnits: 0 }));
}

const byTime = <T extends { at: string }>(xs: T[]): T[] => xs.sort((a, b) => ms(a.at) - ms(b.at));
const counted = (r: MeterReports): MeterReports => ({ ...r, received: r.received + 1 });

/**
 * How many pauses and resumes are stamped `at`: two reports of one kind at the same time are
 * one report twice, unless one of the other kind lies between them (a rig of no length).
 */
function sameTime(r: MeterReports, at: string): { pauses: number; resumes: number } {
  const t = ms(at);
  return {
    pauses: r.pauses.filter((p) => ms(p.at) === t).length,
    resumes: r.resumes.filter((x) => ms(x.at) === t).length,
  };
}

/** With the open added (the first one counts: a repeated open changes nothing). */
export const withOpen = (r: MeterReports, open: Reported): MeterReports =>
  r.open === undefined ? counted({ ...r, open: { ...open, n: r.received } }) : r;

/** With a pause at `at` added (once: the same report again changes nothing). */
export function withPause(r: MeterReports, at: string): MeterReports {
  const n = sameTime(r, at);
  if (n.pauses > n.resumes) return r;
  return counted({ ...r, pauses: byTime([...r.pauses, { at, n: r.received }]) });
}

/** With a resume added (once: the same report again changes nothing). */
export function withResume(r: MeterReports, resume: Reported): MeterReports {
  const n = sameTime(r, resume.at);
  if (n.resumes > n.pauses) return r;
  return counted({ ...r, resumes: byTime([...r.resumes, { ...resume, n: r.received }]) });
}

export const withClose = (r: MeterReports, at: string): MeterReports =>
  r.closedAt === undefined ? counted({ ...r, closedAt: at }) : r;
