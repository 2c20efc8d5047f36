// Throwaway PostgreSQL databases, one per test file, so tests never share rows.
import { randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';

/** The slice of `pg.Client` the harness and its tests use. */
export interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: Record<string, unknown>[] }>;
  end(): Promise<void>;
}

interface PgClientConfig {
  host?: string;
  port?: number;
  user?: string;
  database?: string;
  connectionString?: string;
  connectionTimeoutMillis?: number;
}

interface PgModule {
  Client: new (config: PgClientConfig) => PgClient;
}

// `pg` ships no type declarations and @types/pg is not a dependency, so a typed require keeps
// the untyped module behind the small interface above instead of leaking `any` into tests.
const pg = createRequire(import.meta.url)('pg') as PgModule;

export interface PgSettings {
  host: string;
  port: number;
  user: string;
}

// Read at call time so a test can point the harness elsewhere by setting the environment.
export function pgSettings(): PgSettings {
  return {
    host: process.env.PGHOST ?? '127.0.0.1',
    port: Number(process.env.PGPORT ?? 5432),
    user: process.env.PGUSER ?? 'postgres',
  };
}

/** Connects to `database` (a name) or to a `postgres://` URL; the caller must `end()` it. */
export async function connectPostgres(
  databaseOrUrl: string,
  timeoutMs = 10_000,
): Promise<PgClient> {
  const target = databaseOrUrl.includes('://')
    ? { connectionString: databaseOrUrl }
    : { ...pgSettings(), database: databaseOrUrl };
  const client = new pg.Client({ ...target, connectionTimeoutMillis: timeoutMs });
  try {
    await client.connect();
  } catch (err) {
    // A failed connect can leave a socket half-open; ending it keeps the test process clean.
    await client.end().catch(() => undefined);
    throw err;
  }
  return client;
}

export interface TestDatabase {
  name: string;
  url: string;
  drop(): Promise<void>;
}

async function asAdmin(sql: string): Promise<void> {
  const admin = await connectPostgres('postgres');
  try {
    await admin.query(sql);
  } finally {
    await admin.end();
  }
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const { host, port, user } = pgSettings();
  // The pid makes leftovers traceable to the test process that leaked them.
  const name = `respawn_t_${randomBytes(4).toString('hex')}_${process.pid}`;
  await asAdmin(`CREATE DATABASE "${name}"`);
  return {
    name,
    url: `postgres://${encodeURIComponent(user)}@${host}:${port}/${name}`,
    // FORCE ends connections a test forgot to close, which would otherwise block the drop.
    drop: () => asAdmin(`DROP DATABASE IF EXISTS "${name}" WITH (FORCE)`),
  };
}
