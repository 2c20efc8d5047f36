/**
 * The worker process's own HTTP endpoints, for probes and Prometheus:
 * `/healthz` answers as long as the event loop does (touches no dependency, so a NATS or
 * PostgreSQL outage never gets the process restarted); `/readyz` checks NATS (a round trip
 * to the server) and PostgreSQL (`select 1`), each within a short timeout, and answers 503
 * naming what is down; `/metrics` is the registry passed in, in Prometheus text format.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { NatsConnection } from '@nats-io/transport-node';
import type { Knex } from 'knex';
import type { Logger } from 'pino';
import type { Registry } from 'prom-client';

export interface Check {
  ok: boolean;
  detail: string;
}

export interface WorkerHttpOptions {
  nc: NatsConnection;
  knex: Knex;
  registry: Registry;
  log: Logger;
  /** 0 picks a free port (tests). */
  port: number;
  host?: string;
  /** Each readiness check gives up after this long. */
  timeoutMs?: number;
}

export interface WorkerHttp {
  readonly port: number;
  close(): Promise<void>;
}

const message = (err: unknown): string => (err instanceof Error ? err.message : String(err));

/** Settles as `p` does, or fails with `what` after `ms` (the slow call is left to finish). */
function within<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no answer within ${ms} ms`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

async function check(what: string, ms: number, probe: () => Promise<string>): Promise<Check> {
  try {
    return { ok: true, detail: await within(probe(), ms, what) };
  } catch (err) {
    const m = message(err);
    return { ok: false, detail: m.startsWith(what) ? m : `${what}: ${m}` };
  }
}

export async function startWorkerHttp(opts: WorkerHttpOptions): Promise<WorkerHttp> {
  const timeoutMs = opts.timeoutMs ?? 1_000;
  const log = opts.log.child({ component: 'http' });

  async function readiness(): Promise<{ ok: boolean; checks: Record<string, Check> }> {
    const [nats, postgres] = await Promise.all([
      check('NATS', timeoutMs, async () => {
        if (opts.nc.isClosed()) throw new Error('NATS connection closed');
        // While reconnecting the PING waits in the client's buffer: the timeout answers.
        const rtt = await opts.nc.rtt();
        return `round trip ${rtt.toFixed(1)} ms`;
      }),
      check('PostgreSQL', timeoutMs, async () => {
        await opts.knex.raw('select 1');
        return 'select 1';
      }),
    ]);
    return { ok: nats.ok && postgres.ok, checks: { nats, postgres } };
  }

  const server: Server = createServer((req, res) => {
    const send = (code: number, type: string, body: string): void => {
      res.writeHead(code, { 'content-type': type, 'cache-control': 'no-store' });
      res.end(body);
    };
    const json = (code: number, body: unknown): void =>
      send(code, 'application/json; charset=utf-8', JSON.stringify(body));
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') return json(405, { ok: false });
    switch (path) {
      case '/healthz':
        return json(200, { ok: true });
      case '/readyz':
        readiness()
          .then((r) => json(r.ok ? 200 : 503, r))
          .catch((err: unknown) => json(503, { ok: false, error: message(err) }));
        return;
      case '/metrics':
        opts.registry
          .metrics()
          .then((text) => send(200, opts.registry.contentType, text))
          .catch((err: unknown) => {
            log.warn({ err }, 'metrics collection failed');
            json(500, { ok: false });
          });
        return;
      default:
        return json(404, { ok: false });
    }
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host ?? '0.0.0.0', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  log.info({ port }, 'worker http listening');

  return {
    port,
    close() {
      return new Promise<void>((resolve, reject) => {
        server.close((err) => (err === undefined ? resolve() : reject(err)));
        server.closeIdleConnections();
      });
    },
  };
}
