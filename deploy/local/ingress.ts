/** The ingress routers (telegram, agent, razorpay) on one NATS connection. */
import type { NatsConnection } from '@nats-io/transport-node';
import type { Logger } from 'pino';
import {
  createAgentIngress,
  createRazorpayIngress,
  createTelegramIngress,
} from '../../actors/ingress/index.ts';

export interface LocalIngress {
  names: string[];
  stop(): Promise<void>;
}

export async function startIngress(opts: {
  nc: NatsConnection;
  log: Logger;
  topupPresetsPaise: readonly number[];
  /** The bot's username, when known (the fake's): another bot's commands are ignored. */
  botUsername?: string;
}): Promise<LocalIngress> {
  const routers = [
    {
      name: 'telegram',
      r: createTelegramIngress({
        nc: opts.nc,
        log: opts.log,
        topupPresetsPaise: opts.topupPresetsPaise,
        ...(opts.botUsername === undefined ? {} : { botUsername: opts.botUsername }),
      }),
    },
    { name: 'agent', r: createAgentIngress({ nc: opts.nc, log: opts.log }) },
    { name: 'razorpay', r: createRazorpayIngress({ nc: opts.nc, log: opts.log }) },
  ];
  const running: typeof routers = [];
  try {
    for (const x of routers) {
      await x.r.start();
      running.push(x);
    }
  } catch (err) {
    for (const x of running.reverse()) await x.r.stop();
    throw err;
  }
  return {
    names: routers.map((x) => x.name),
    async stop() {
      for (const x of running.reverse()) await x.r.stop();
    },
  };
}
