/** The local run's public face: what deploy/local.ts and the tests use. */
export { startLocal, type LocalRun } from './start.ts';
export {
  type LocalOptions,
  type LocalTimings,
  type RazorpaySettings,
  type TelegramSettings,
} from './options.ts';
export { loadLocalOptions } from './env.ts';
export type { AzureSettings } from './azure.ts';
