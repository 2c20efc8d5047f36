// Fails the whole run once, naming every missing service, instead of many confusing test failures.
import { assertServices } from './harness/index.ts';

export default async function setup(): Promise<void> {
  await assertServices();
}
