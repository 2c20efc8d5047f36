/**
 * Subject, stream-filter and partition builders. Every token is validated: a handler never
 * builds a subject with a template string, so a player id with a '.' or '*' cannot widen a
 * subscription or land a command on someone else's key.
 */
import { TerminalError, ErrorCodes } from './errors.ts';

export const ROOT = 'respawn';

/** Must equal the `partition(64, 1)` in deploy/nats/respawn.conf; workers verify it at start. */
export const PARTITIONS = 64;

/** Actor kinds that own a command subject space `respawn.<kind>.<key>.cmd.<verb>`. */
export const ActorKinds = {
  session: 'session',
  billing: 'billing',
  alloc: 'alloc',
  demo: 'demo',
} as const;
export type ActorKind = (typeof ActorKinds)[keyof typeof ActorKinds];

export const IngressSources = {
  telegram: 'telegram',
  razorpay: 'razorpay',
  agent: 'agent',
} as const;
export type IngressSource = (typeof IngressSources)[keyof typeof IngressSources];

const TOKEN = /^[A-Za-z0-9_-]{1,128}$/;

export function isValidToken(token: string): boolean {
  return TOKEN.test(token);
}

/** Returns the token or throws a TerminalError naming what was wrong with it. */
export function validToken(token: string, what: string): string {
  if (!isValidToken(token)) {
    throw new TerminalError(
      ErrorCodes.badSubject,
      `${what} ${JSON.stringify(token)} is not a valid subject token (1-128 of A-Z a-z 0-9 _ -)`,
    );
  }
  return token;
}

function isActorKind(v: string): v is ActorKind {
  return (Object.values(ActorKinds) as string[]).includes(v);
}

/** FNV-1a 32-bit over the key's UTF-8 bytes, modulo n: what nats-server's partition() computes. */
export function partitionOf(key: string, n: number = PARTITIONS): number {
  let h = 0x811c9dc5;
  for (const byte of Buffer.from(key, 'utf8')) {
    h ^= byte;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h % n;
}

/** The subject a publisher uses for a command; the server appends the partition. */
export function cmdSubject(kind: ActorKind, key: string, verb: string): string {
  return `${ROOT}.${kind}.${validToken(key, 'key')}.cmd.${validToken(verb, 'verb')}`;
}

export function evtSubject(kind: ActorKind, key: string, event: string): string {
  return `${ROOT}.${kind}.${validToken(key, 'key')}.evt.${validToken(event, 'event')}`;
}

/** Everything an actor kind has stored for one partition, as a consumer filter. */
export function partitionFilter(kind: ActorKind, partition: number): string {
  if (!Number.isInteger(partition) || partition < 0 || partition >= PARTITIONS) {
    throw new RangeError(`partition ${partition} is outside 0..${PARTITIONS - 1}`);
  }
  return `${ROOT}.${kind}.*.cmd.*.${partition}`;
}

export function ingressSubject(source: IngressSource): string {
  return `${ROOT}.in.${source}`;
}

export function outTelegramSubject(chatId: string): string {
  return `${ROOT}.out.telegram.${validToken(chatId, 'chat id')}`;
}

/** Azure calls the allocator of `region` asks for, carried out by the effects runner. */
export function outAzureSubject(region: string): string {
  return `${ROOT}.out.azure.${validToken(region, 'region')}`;
}

export function outRazorpaySubject(): string {
  return `${ROOT}.out.razorpay`;
}

/** Dead letters of one actor kind, by reason: `nats sub 'respawn.dlq.session.>'`. */
export function dlqSubject(kind: ActorKind, code: string): string {
  return `${ROOT}.dlq.${kind}.${validToken(code, 'code')}`;
}

export interface ParsedCmdSubject {
  kind: ActorKind;
  key: string;
  verb: string;
  /** Present on stored (mapped) subjects. */
  partition: number | undefined;
}

/**
 * Parses `respawn.<kind>.<key>.cmd.<verb>[.<partition>]`. Throws a TerminalError for
 * anything else, including a partition token that does not belong to the key.
 */
export function parseCmdSubject(subject: string): ParsedCmdSubject {
  const t = subject.split('.');
  const [root, kind, key, cmd, verb, part] = t;
  if (
    (t.length !== 5 && t.length !== 6) ||
    root !== ROOT ||
    cmd !== 'cmd' ||
    kind === undefined ||
    !isActorKind(kind) ||
    key === undefined ||
    verb === undefined
  ) {
    throw new TerminalError(ErrorCodes.badSubject, `${subject} is not a command subject`);
  }
  validToken(key, 'key');
  validToken(verb, 'verb');
  let partition: number | undefined;
  if (part !== undefined) {
    partition = Number(part);
    if (!/^(0|[1-9]\d*)$/.test(part) || partition !== partitionOf(key)) {
      throw new TerminalError(
        ErrorCodes.wrongPartition,
        `${subject}: partition ${part} is not key ${key}'s (${partitionOf(key)}); publish to the unmapped subject`,
      );
    }
  }
  return { kind, key, verb, partition };
}
