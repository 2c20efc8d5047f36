/** The public face of the billing actor. */
export { billingActor, createBillingActor, handleBilling, type BillingActor } from './actor.ts';
export {
  BillingConfigError,
  BillingConfigSchema,
  billingConfig,
  defaultBillingConfig,
  loadBillingConfig,
  type BillingConfig,
} from './config.ts';
export { availablePaise, requiredPaise } from './credit.ts';
export {
  BillingRecord,
  BillingTablesMigration,
  HoldRecord,
  LedgerRecord,
  billingMigrations,
  persistBillingRecords,
} from './ledger.ts';
export { dueAt, settleMeter, usageKey } from './meter.ts';
export { referenceIdFor } from './payments.ts';
export { BillingState, initialBillingState, type Meter, type Topup } from './state.ts';
