/** Creates the PostgreSQL database named in a URL when it does not exist yet. */
import { createRequire } from 'node:module';

interface PgClient {
  connect(): Promise<void>;
  query(text: string, values?: unknown[]): Promise<{ rows: unknown[] }>;
  end(): Promise<void>;
}
interface PgModule {
  Client: new (config: { connectionString: string; connectionTimeoutMillis?: number }) => PgClient;
}

// `pg` ships no types and @types/pg is not a dependency: keep it behind the interface above.
const pg = createRequire(import.meta.url)('pg') as PgModule;

export async function ensureDatabase(url: string): Promise<'created' | 'exists'> {
  const target = new URL(url);
  const name = decodeURIComponent(target.pathname.replace(/^\//, ''));
  if (!/^[A-Za-z0-9_-]{1,63}$/.test(name)) throw new Error('DATABASE_URL names no usable database');
  const admin = new URL(url);
  admin.pathname = '/postgres';
  const client = new pg.Client({
    connectionString: admin.toString(),
    connectionTimeoutMillis: 10_000,
  });
  await client.connect();
  try {
    const found = await client.query('select 1 from pg_database where datname = $1', [name]);
    if (found.rows.length > 0) return 'exists';
    await client.query(`create database "${name}"`);
    return 'created';
  } finally {
    await client.end();
  }
}
