/**
 * How Respawn's processes connect to NATS: the server list (every node of a cluster), the
 * component's user and password, and the component's reply-inbox prefix. deploy/nats/auth.conf
 * lets each user subscribe to its own prefix only, so no component can read another's replies.
 * The variables are validated with the rest of each process's configuration.
 */
import type { ConnectionOptions } from '@nats-io/transport-node';
import { z } from 'zod';

/** The users of deploy/nats/auth.conf. */
export const NatsUsers = {
  gateway: 'gateway',
  actors: 'actors',
  operator: 'operator',
  services: 'services',
} as const;
export type NatsUser = (typeof NatsUsers)[keyof typeof NatsUsers];

/** `_INBOX_<user>`: the only inbox auth.conf lets that user subscribe to. */
export function natsInboxPrefix(user: NatsUser): string {
  return `_INBOX_${user}`;
}

/** nats.js reads no credentials from a URL (it drops them silently), hence the refusal. */
const SERVER = /^(?:(?:nats|tls|ws|wss):\/\/)?[A-Za-z0-9.[\]:-]+$/;

/** The servers of a comma-separated NATS_URL, trimmed, empty entries dropped. */
export function natsServers(url: string): string[] {
  return url
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);
}

/**
 * The server parses a password variable as a configuration value (an all-digit one becomes a
 * number and is refused, a space ends it), so both sides keep to a plain alphabet.
 */
const PASSWORD = /^[A-Za-z][A-Za-z0-9_-]{15,255}$/;

/** NATS_URL, NATS_USER, NATS_PASSWORD: spread into a process's environment schema. */
export const natsEnvShape = {
  NATS_URL: z
    .string()
    .default('nats://127.0.0.1:4222')
    .superRefine((url, ctx) => {
      const servers = natsServers(url);
      if (servers.length === 0) ctx.addIssue({ code: 'custom', message: 'names no server' });
      for (const s of servers) {
        if (s.includes('@')) {
          ctx.addIssue({
            code: 'custom',
            message:
              'must not hold credentials (the client ignores them): use NATS_USER and NATS_PASSWORD',
          });
        } else if (!SERVER.test(s)) {
          ctx.addIssue({
            code: 'custom',
            message:
              'must be nats://host:port, or several separated by commas (every node of a cluster)',
          });
        }
      }
    }),
  NATS_USER: z
    .string()
    .regex(
      /^[A-Za-z0-9_-]{1,64}$/,
      'must be 1-64 of A-Z a-z 0-9 _ - (a user of deploy/nats/auth.conf)',
    )
    .optional(),
  NATS_PASSWORD: z
    .string()
    .regex(
      PASSWORD,
      'must be 16-256 of A-Z a-z 0-9 _ - starting with a letter (nats-server reads it from its environment as a configuration value)',
    )
    .optional(),
};

/** JetStream replicas of Respawn's streams: 1 on a single node, 3 on the cluster. */
export const streamReplicasShape = {
  RESPAWN_STREAM_REPLICAS: z.coerce
    .number()
    .int()
    .refine((n) => n === 1 || n === 3 || n === 5, 'must be 1, 3 or 5 (and at most the nodes)')
    .default(1),
};

/** User and password go together; a `  NAME: why` line when only one is set. */
export function natsCredentialProblem(env: {
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
}): string | undefined {
  const user = (env.NATS_USER ?? '') !== '';
  const pass = (env.NATS_PASSWORD ?? '') !== '';
  if (user && !pass) return '  NATS_PASSWORD: required when NATS_USER is set';
  if (pass && !user) return '  NATS_USER: required when NATS_PASSWORD is set';
  return undefined;
}

export interface NatsClientSettings {
  NATS_URL: string;
  NATS_USER?: string | undefined;
  NATS_PASSWORD?: string | undefined;
}

/** The client options of one component's connection, reconnecting for ever. */
export function natsConnectOptions(
  settings: NatsClientSettings,
  component: NatsUser,
  name: string,
): ConnectionOptions {
  return {
    servers: natsServers(settings.NATS_URL),
    name,
    inboxPrefix: natsInboxPrefix(component),
    maxReconnectAttempts: -1,
    // Without it nats.js builds three Error objects (stack traces) for every request, and a
    // JetStream publish is a request: about a tenth of a busy process's CPU (bench:e2e profile).
    noAsyncTraces: true,
    ...(settings.NATS_USER === undefined || settings.NATS_PASSWORD === undefined
      ? {}
      : { user: settings.NATS_USER, pass: settings.NATS_PASSWORD }),
  };
}
