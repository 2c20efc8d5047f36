/**
 * How an actor type is declared: its kind (which fixes its subjects), its state schema, the
 * messages it accepts and one plain handler. A handler makes no network call and reads time
 * only from its context, so it is tested without any server.
 */
import type { Knex } from 'knex';
import type { MigrationObject } from '@mikro-orm/core';
import type { z } from 'zod';
import {
  TimerFired,
  messageSet,
  type ActorKind,
  type MessageDef,
  type MessageOf,
  type MessageSet,
} from '../../contracts/index.ts';

export interface HandlerContext {
  readonly kind: ActorKind;
  readonly key: string;
  readonly now: Date;
  /** The input's message id (Nats-Msg-Id, or stream and sequence when it had none). */
  readonly msgId: string;
  readonly subject: string;
  /** How many times this message was delivered before (0 on the first delivery). */
  readonly redeliveries: number;
}

/** A message to publish once the handler's transaction has committed. */
export interface Emission {
  readonly subject: string;
  readonly type: string;
  readonly data: Uint8Array;
}

export type TimerOp =
  | { readonly name: string; readonly at: Date; readonly data?: unknown }
  | { readonly name: string; readonly cancel: true };

export interface HandlerResult<S> {
  readonly state: S;
  readonly emit?: readonly Emission[];
  readonly timers?: readonly TimerOp[];
  /**
   * Rows for the actor's own tables (a ledger, an audit trail), written by its `persist`
   * in the same transaction as the state: a unique key there is the last line of defence.
   */
  readonly records?: readonly unknown[];
  /**
   * Why the message changed nothing, when that is worth an operator's eye (a report from a VM
   * the session no longer has, a reply for a session that moved on): logged by the runtime as
   * "message ignored" with the reason, counted with outcome `ignored`; the message is acked.
   */
  readonly ignored?: string;
}

/** A record the handler produced, with where and when. */
export interface PersistRecord {
  readonly key: string;
  readonly msgId: string;
  readonly at: Date;
  readonly record: unknown;
}

/** Writes an actor's records inside the runtime's transaction. Throwing fails the batch. */
export type Persist = (trx: Knex.Transaction, records: readonly PersistRecord[]) => Promise<void>;

/** A migration an actor brings for its own tables (MikroORM migration class). */
export type ActorMigration = MigrationObject;

export type Handler<S, M> = (state: S, message: M, ctx: HandlerContext) => HandlerResult<S>;

export type TimerMessage = MessageOf<typeof TimerFired>;

export interface ActorDefinition<S = unknown, M = unknown> {
  readonly kind: ActorKind;
  readonly state: z.ZodType<S>;
  initial(key: string): S;
  readonly messages: MessageSet<MessageDef>;
  /** Decodes an input; the runtime adds its own timer message. */
  decode(data: Uint8Array): M | TimerMessage;
  readonly handle: Handler<S, M | TimerMessage>;
  /**
   * The handler changes the state it is given in place (and returns it), instead of returning
   * a changed copy: for a hot key with a large state, where a copy per message would cost more
   * than the message. The runtime hands it a state only its batch holds, and when such a
   * handler throws in a batch holding other messages of its key, the batch is retried one
   * message at a time, each from the stored state, so a half-changed state is never written.
   */
  readonly mutatesState: boolean;
  readonly persist: Persist | undefined;
  readonly migrations: readonly ActorMigration[];
}

export function defineActor<S, const D extends MessageDef>(def: {
  kind: ActorKind;
  state: z.ZodType<S>;
  initial: (key: string) => S;
  messages: readonly D[];
  handle: Handler<S, MessageOf<D> | TimerMessage>;
  mutatesState?: boolean;
  persist?: Persist;
  migrations?: readonly ActorMigration[];
}): ActorDefinition<S, MessageOf<D>> {
  const set = messageSet<D | typeof TimerFired>([...def.messages, TimerFired]);
  return {
    kind: def.kind,
    state: def.state,
    initial: def.initial,
    messages: set,
    decode: (data) => set.decode(data),
    handle: def.handle,
    mutatesState: def.mutatesState ?? false,
    persist: def.persist,
    migrations: def.migrations ?? [],
  };
}

/** Builds an emission from a message definition: the payload is validated on the way out. */
export function emit<T extends string, P>(
  def: MessageDef<T, P>,
  subject: string,
  value: P,
): Emission {
  return { subject, type: def.type, data: def.encode(value) };
}
