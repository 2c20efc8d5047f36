/**
 * The runtime's PostgreSQL tables, declared as MikroORM schemas and created by a migration.
 * The hot path (one transaction per batch of messages) uses the ORM's own knex connection
 * with set-based statements: a unit of work per message would cost a round trip per entity.
 */
import { EntitySchema, MikroORM, type MigrationObject } from '@mikro-orm/postgresql';
import type { EntityManager } from '@mikro-orm/postgresql';
import { Migrator, Migration } from '@mikro-orm/migrations';
import type { Knex } from 'knex';
import type { Logger } from 'pino';

export interface ActorStateRow {
  actor: string;
  key: string;
  version: number;
  state: unknown;
  updatedAt: Date;
}
export interface InboxRow {
  actor: string;
  msgId: string;
  outcome: string;
  handledAt: Date;
}
export interface OutboxRow {
  id: string;
  subject: string;
  msgType: string;
  headers: Record<string, string>;
  data: Buffer;
  createdAt: Date;
}
export interface TimerRow {
  id: string;
  actor: string;
  key: string;
  name: string;
  fireAt: Date;
  data: unknown;
  emittedAt: Date | null;
}

export const ActorStateSchema = new EntitySchema<ActorStateRow>({
  name: 'ActorState',
  tableName: 'rt_state',
  properties: {
    actor: { type: 'string', primary: true },
    key: { type: 'string', primary: true },
    version: { type: 'integer', version: true },
    state: { type: 'json' },
    updatedAt: { type: 'datetime', fieldName: 'updated_at' },
  },
});
export const InboxSchema = new EntitySchema<InboxRow>({
  name: 'Inbox',
  tableName: 'rt_inbox',
  properties: {
    actor: { type: 'string', primary: true },
    msgId: { type: 'string', primary: true, fieldName: 'msg_id' },
    outcome: { type: 'string' },
    handledAt: { type: 'datetime', fieldName: 'handled_at' },
  },
});
export const OutboxSchema = new EntitySchema<OutboxRow>({
  name: 'Outbox',
  tableName: 'rt_outbox',
  properties: {
    id: { type: 'bigint', primary: true },
    subject: { type: 'string' },
    msgType: { type: 'string', fieldName: 'msg_type' },
    headers: { type: 'json' },
    data: { type: 'blob' },
    createdAt: { type: 'datetime', fieldName: 'created_at' },
  },
});
export const TimerSchema = new EntitySchema<TimerRow>({
  name: 'Timer',
  tableName: 'rt_timer',
  properties: {
    id: { type: 'bigint', primary: true },
    actor: { type: 'string' },
    key: { type: 'string' },
    name: { type: 'string' },
    fireAt: { type: 'datetime', fieldName: 'fire_at' },
    data: { type: 'json', nullable: true },
    emittedAt: { type: 'datetime', fieldName: 'emitted_at', nullable: true },
  },
});

export class RuntimeTablesMigration extends Migration {
  override up(): void {
    this.addSql(`create table rt_state (
      actor text not null, key text not null, version integer not null,
      state jsonb not null, updated_at timestamptz not null,
      primary key (actor, key))`);
    this.addSql(`create table rt_inbox (
      actor text not null, msg_id text not null, outcome text not null,
      handled_at timestamptz not null,
      primary key (actor, msg_id))`);
    this.addSql(`create index rt_inbox_handled_at on rt_inbox (handled_at)`);
    this.addSql(`create table rt_outbox (
      id bigserial primary key, subject text not null, msg_type text not null,
      headers jsonb not null, data bytea not null,
      created_at timestamptz not null default now())`);
    this.addSql(`create table rt_timer (
      id bigserial primary key, actor text not null, key text not null, name text not null,
      fire_at timestamptz not null, data jsonb, emitted_at timestamptz,
      unique (actor, key, name))`);
    this.addSql(`create index rt_timer_due on rt_timer (fire_at) where emitted_at is null`);
  }

  override down(): void {
    this.addSql('drop table if exists rt_timer, rt_outbox, rt_inbox, rt_state');
  }
}

/** The trace context of the message that set a timer, for its firing to link to. */
export class TimerTraceMigration extends Migration {
  override up(): void {
    this.addSql('alter table rt_timer add column trace jsonb');
  }

  override down(): void {
    this.addSql('alter table rt_timer drop column if exists trace');
  }
}

/**
 * A state is kept as the JSON text its writer serialized (`json`), not parsed into `jsonb`.
 * Nothing queries inside states on the hot path, and PostgreSQL's jsonb parse of a large
 * state cost more than the rest of its batch: the allocator's region state (2.9 MB of
 * reservations at 10,000 VMs) took ~200 ms to update as jsonb and ~25 ms as json. Operators'
 * `state->>'phase'` works on either.
 */
export class StateTextMigration extends Migration {
  override up(): void {
    this.addSql('alter table rt_state alter column state type json using state::json');
  }

  override down(): void {
    this.addSql('alter table rt_state alter column state type jsonb using state::jsonb');
  }
}

/** Leases on windowed partitions (ownership.ts): one owning worker per hot partition. */
export class LeaseMigration extends Migration {
  override up(): void {
    this.addSql(`create table rt_lease (
      name text primary key, owner text not null, expires_at timestamptz not null)`);
  }

  override down(): void {
    this.addSql('drop table if exists rt_lease');
  }
}

/** Each key's parking lot: messages waiting behind a failed one of the same key. */
export class ParkingMigration extends Migration {
  override up(): void {
    this.addSql(`create table rt_parked (
      id bigserial primary key, actor text not null, key text not null,
      msg_id text not null, subject text not null, stream text not null,
      stream_seq bigint not null, headers jsonb not null, data bytea not null,
      attempts integer not null, next_attempt_at timestamptz not null,
      last_error text not null, parked_at timestamptz not null)`);
    this.addSql(`create index rt_parked_key on rt_parked (actor, key, id)`);
    this.addSql(`create index rt_parked_due on rt_parked (next_attempt_at)`);
  }

  override down(): void {
    this.addSql('drop table if exists rt_parked');
  }
}

export interface Database {
  readonly orm: MikroORM;
  readonly em: EntityManager;
  readonly knex: Knex;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  url: string;
  log: Logger;
  poolMax?: number;
  /**
   * A worker paused mid-transaction (SIGSTOP) must not hold a key's rows forever: PostgreSQL
   * ends such a session, its transaction rolls back and another worker proceeds.
   */
  idleInTransactionMs?: number;
  /** Migrations of the actors this process hosts, applied after the runtime's own. */
  migrations?: readonly MigrationObject[];
}

/** knex's `log` option: its messages as pino lines, marked `knex: true`. */
function knexLog(
  log: Logger,
): Record<'debug' | 'warn' | 'error' | 'deprecate', (m: unknown) => void> {
  const text = (m: unknown): string => (typeof m === 'string' ? m : JSON.stringify(m));
  return {
    debug: (m) => log.debug({ knex: true }, text(m)),
    warn: (m) => log.warn({ knex: true }, text(m)),
    error: (m) => log.error({ knex: true }, text(m)),
    deprecate: (m) => log.warn({ knex: true }, text(m)),
  };
}

export async function openDatabase(opts: DatabaseOptions): Promise<Database> {
  const idleMs = opts.idleInTransactionMs ?? 5_000;
  const orm = await MikroORM.init({
    clientUrl: opts.url,
    entities: [ActorStateSchema, InboxSchema, OutboxSchema, TimerSchema],
    extensions: [Migrator],
    migrations: {
      migrationsList: [
        { name: 'Migration20261126_runtime', class: RuntimeTablesMigration },
        { name: 'Migration20261126_parking', class: ParkingMigration },
        { name: 'Migration20261127_lease', class: LeaseMigration },
        { name: 'Migration20261127_timer_trace', class: TimerTraceMigration },
        { name: 'Migration20261206_state_json', class: StateTextMigration },
        ...(opts.migrations ?? []),
      ],
      transactional: true,
      allOrNothing: true,
      snapshot: false,
    },
    discovery: { warnWhenNoEntities: false },
    debug: false,
    pool: { min: 0, max: opts.poolMax ?? 10 },
    driverOptions: {
      connection: { options: `-c idle_in_transaction_session_timeout=${idleMs}` },
      // knex's own warnings ("Connection Error: …" when PostgreSQL goes away) go to the JSON
      // log; by default knex prints them with console, a plain line in the middle of it.
      log: knexLog(opts.log),
    },
    logger: (message: string) => opts.log.debug({ orm: true }, message),
  });
  const em = orm.em as EntityManager;
  return {
    orm,
    em,
    knex: em.getKnex(),
    close: () => orm.close(true),
  };
}

/** Creates the database if it does not exist and applies pending migrations. */
export async function migrate(db: Database): Promise<string[]> {
  await db.orm.schema.ensureDatabase();
  const done = await db.orm.migrator.up();
  return done.map((m) => m.name);
}
