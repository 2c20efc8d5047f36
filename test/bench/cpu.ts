/**
 * CPU time of the processes a benchmark drives, read from /proc: on a shared machine, CPU
 * per unit of work is steadier than wall-clock throughput, and it says which process the
 * time went to (PostgreSQL's backends included, since the server is shared).
 */
import { readFileSync, readdirSync } from 'node:fs';

/** USER_HZ: the unit of /proc/<pid>/stat's utime and stime on Linux. */
const CLOCK_TICKS = 100;

/** CPU seconds (user + system) a process has used so far, from /proc/<pid>/stat; 0 if gone. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3 on.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(f[11]) + Number(f[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** CPU seconds of every PostgreSQL process now running, by pid (the server is shared). */
export function postgresCpu(): Map<number, number> {
  const out = new Map<number, number>();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      if (readFileSync(`/proc/${d}/comm`, 'utf8').trim() === 'postgres')
        out.set(Number(d), cpuSeconds(Number(d)));
    } catch {
      // Gone in between.
    }
  }
  return out;
}

/**
 * CPU seconds used from `start` to each `sample` by named processes and by PostgreSQL (all
 * its processes: a backend that exits keeps its last reading). Sample before a process
 * exits, or its share is lost.
 */
export function cpuMeter(procs: Record<string, () => number>): {
  sample(): Record<string, number>;
} {
  const first: Record<string, number> = {};
  const last: Record<string, number> = {};
  for (const [name, pid] of Object.entries(procs)) first[name] = cpuSeconds(pid());
  const pgFirst = postgresCpu();
  const pgLast = new Map(pgFirst);
  return {
    sample() {
      const out: Record<string, number> = {};
      for (const [name, pid] of Object.entries(procs)) {
        const now = cpuSeconds(pid()) || (last[name] ?? 0);
        last[name] = now;
        out[name] = now - (first[name] ?? 0);
      }
      for (const [pid, v] of postgresCpu()) pgLast.set(pid, v);
      let pg = 0;
      for (const [pid, v] of pgLast) pg += v - (pgFirst.get(pid) ?? 0);
      out['postgresql (all processes)'] = pg;
      return out;
    },
  };
}
