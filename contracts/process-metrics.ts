/**
 * prom-client's process metrics (CPU, memory, heap, handles, event-loop lag) for the worker and
 * the gateway, each under its own prefix.
 */
import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * How often the event-loop lag is sampled. prom-client's default, 10 ms, is a libuv timer that
 * wakes an idle process 100 times a second; on a VM where each wake-up costs ~0.1 ms of CPU
 * that was a sixth of an idle worker's CPU. Ten samples a second still catch any stall long
 * enough to matter to a reply (a stall of 100 ms or more delays a sample by definition).
 */
export const EVENT_LOOP_SAMPLE_MS = 100;

export function collectProcessMetrics(register: Registry, prefix: string): void {
  collectDefaultMetrics({ register, prefix, eventLoopMonitoringPrecision: EVENT_LOOP_SAMPLE_MS });
}
