/** Virtual time for pure tests of timed code (the Telegram pacer): nothing waits for real. */
import type { PacerClock } from '../../gateway/index.ts';

/** Sleeps resolve in time order when `run` advances the clock, once nothing else can run. */
export function virtualClock(): PacerClock & { run(): Promise<void> } {
  let t = 0;
  const timers: { at: number; resolve: () => void }[] = [];
  const flush = () => new Promise<void>((r) => setImmediate(r));
  return {
    now: () => t,
    sleep: (ms) =>
      new Promise<void>((resolve) => {
        timers.push({ at: t + ms, resolve });
      }),
    async run() {
      for (;;) {
        await flush();
        if (timers.length === 0) return;
        timers.sort((a, b) => a.at - b.at);
        const next = timers.shift()!;
        t = Math.max(t, next.at);
        next.resolve();
      }
    },
  };
}
