// The one import path tests use for real services.
export { assertServices, redisPrefix, redisUrl } from './services.ts';
export { natsServerBin, startNats } from './nats.ts';
export type { NatsServerHandle, StartNatsOptions } from './nats.ts';
export { connectPostgres, createTestDatabase, pgSettings } from './postgres.ts';
export type { PgClient, PgSettings, TestDatabase } from './postgres.ts';
