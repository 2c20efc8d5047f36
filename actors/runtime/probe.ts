/**
 * Start-up check that the NATS server applies Respawn's partition mapping with the partition
 * count this code was built for. Without it, commands would be stored under no consumer's
 * filter and silently never handled.
 */
import type { NatsConnection } from '@nats-io/transport-node';
import { nuid } from '@nats-io/transport-node';
import { PARTITIONS, ROOT, partitionOf } from '../../contracts/index.ts';

export class MappingMissingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MappingMissingError';
  }
}

export async function checkPartitionMapping(nc: NatsConnection, timeoutMs = 2_000): Promise<void> {
  const key = `p${nuid.next()}`;
  const base = `${ROOT}.probe.${key}.cmd.check`;
  const sub = nc.subscribe(`${base}.*`, { max: 1, timeout: timeoutMs });
  await nc.flush();
  nc.publish(base);
  try {
    for await (const m of sub) {
      const got = m.subject.slice(base.length + 1);
      if (got !== String(partitionOf(key, PARTITIONS))) {
        throw new MappingMissingError(
          `NATS maps ${base} to partition ${got}, this build expects ${partitionOf(key)} of ${PARTITIONS}: deploy/nats/respawn.conf and contracts PARTITIONS disagree`,
        );
      }
      return;
    }
  } catch (err) {
    if (err instanceof MappingMissingError) throw err;
  }
  throw new MappingMissingError(
    'the NATS server does not apply Respawn subject mappings: start it with -c deploy/nats/respawn.conf',
  );
}
