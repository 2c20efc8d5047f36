/**
 * Respawn's own entry points (`actors/main.ts`, `gateway/main.ts`) as child processes of a
 * benchmark, as a deployment runs them: each with its own event loop, so the figures are not
 * those of everything squeezed into the bench's one thread. A child never outlives the bench.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { WORKER_NODE_FLAGS } from '../../deploy/worker-flags.ts';

const children = new Set<ChildProcess>();
process.once('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

export interface Child {
  name: string;
  process: ChildProcess;
  /**
   * Log lines the child wrote so far (its pino log on stdout, shown on the bench's stderr): a
   * bench runs its children at LOG_LEVEL=warn, so each is a warning or an error.
   */
  logLines(): number;
  /** SIGTERM (the entry point's graceful stop), SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

/**
 * `node --import tsx <entry>` with `env` over this process's environment; its log (stdout) and
 * stderr shown on the bench's stderr, so what went wrong in a run is seen, and counted.
 */
export function spawnEntry(name: string, entry: string, env: Record<string, string>): Child {
  // BENCH_CPU_PROF_DIR: each child writes a V8 CPU profile there when it exits.
  // BENCH_CHILD_NODE_FLAGS: more Node flags for the children (e.g. a heap limit to try).
  const prof = process.env.BENCH_CPU_PROF_DIR;
  const flags = [
    ...(prof === undefined ? [] : ['--cpu-prof', `--cpu-prof-dir=${prof}`]),
    // A worker runs as deployed (deploy/worker-flags.ts).
    ...(entry === 'actors/main.ts' ? WORKER_NODE_FLAGS : []),
    ...(process.env.BENCH_CHILD_NODE_FLAGS ?? '').split(' ').filter((f) => f !== ''),
  ];
  const child = spawn(process.execPath, [...flags, '--import', 'tsx', entry], {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'inherit'],
  }).once('exit', (code, signal) => {
    children.delete(child);
    if (code !== 0 && signal !== 'SIGTERM')
      process.stderr.write(`${name} exited: ${code ?? signal}\n`);
  });
  children.add(child);
  let lines = 0;
  child.stdout?.on('data', (chunk: Buffer) => {
    for (const b of chunk) if (b === 10) lines++;
    process.stderr.write(chunk);
  });
  return {
    name,
    process: child,
    logLines: () => lines,
    async stop(graceMs = 10_000) {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const gone = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      const t = setTimeout(() => child.kill('SIGKILL'), graceMs);
      await gone;
      clearTimeout(t);
    },
  };
}

/** Polls `url` until it answers 200; fails early if `child` exits, or after `timeoutMs`. */
export async function untilReady(child: Child, url: string, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited before ready`);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
      if (res.status === 200) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  throw new Error(`${child.name} not ready at ${url} after ${timeoutMs} ms`);
}
