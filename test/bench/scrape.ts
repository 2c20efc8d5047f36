/**
 * What the benchmarks read from Respawn's own Prometheus metrics (the text a process serves on
 * /metrics, or an in-process Registry's): a worker's batch transactions and the gateway's mean
 * call times. Figures the processes already keep, so a bench measures nothing twice.
 */
import { RuntimeMetricNames } from '../../actors/runtime/metrics.ts';

/** A worker's batch transactions so far: how many, the deliveries they carried, their time. */
export interface BatchTotals {
  batches: number;
  deliveries: number;
  seconds: number;
}

/** The value of an unlabelled sample, NaN when the text has none. */
function sample(text: string, name: string): number {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

export function batchTotals(text: string): BatchTotals {
  return {
    batches: sample(text, `${RuntimeMetricNames.batchSeconds}_count`),
    deliveries: sample(text, `${RuntimeMetricNames.batchSize}_sum`),
    seconds: sample(text, `${RuntimeMetricNames.batchSeconds}_sum`),
  };
}

/** What happened between two readings of batchTotals, in words. */
export function describeBatches(before: BatchTotals, after: BatchTotals): string {
  const n = after.batches - before.batches;
  const each = (x: number): string => (x / Math.max(1, n)).toFixed(1);
  return (
    `${n}: ${each(after.deliveries - before.deliveries)} deliveries each, ` +
    `transaction ${each((after.seconds - before.seconds) * 1000)} ms each (mean)`
  );
}

/** The gateway's mean publish→ack and Bot API sendMessage times so far, in ms. */
export async function gatewayMeans(gatewayUrl: string): Promise<Record<string, number>> {
  const text = await (await fetch(new URL('/metrics', gatewayUrl))).text();
  const read = (name: string, label: string): number => {
    const line = (suffix: string) =>
      Number(
        new RegExp(`^${name}_${suffix}\\{[^}]*${label}[^}]*\\} (\\S+)$`, 'm').exec(text)?.[1] ??
          NaN,
      );
    return (line('sum') / line('count')) * 1000;
  };
  return {
    publish: read('respawn_gateway_publish_seconds', 'source="telegram"'),
    sendMessage: read('respawn_gateway_telegram_call_seconds', 'method="sendMessage"'),
  };
}
