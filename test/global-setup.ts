// Fails the whole run once, naming every missing service, instead of many confusing test failures.
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { assertServices } from './harness/index.ts';

const DEFAULT_CHROMIUM = '/usr/bin/chromium';

export const CHROMIUM_FIX =
  'apt-get install -y --no-install-recommends chromium (Debian package), or set CHROMIUM_PATH ' +
  'to a Chromium/Chrome binary';

/**
 * The browser the sandbox page's test drives: `CHROMIUM_PATH`, else Debian's /usr/bin/chromium.
 * Playwright cannot download its own here, so a missing one is an error saying how to install it.
 */
export async function chromiumExecutable(): Promise<string> {
  const given = process.env.CHROMIUM_PATH;
  const bin = given === undefined || given === '' ? DEFAULT_CHROMIUM : given;
  try {
    await access(bin, constants.X_OK);
    return bin;
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new Error(
      `Chromium "${bin}" (CHROMIUM_PATH) is needed by the sandbox page's browser test: ${reason}\n` +
        `  install it with: ${CHROMIUM_FIX}`,
      { cause: err },
    );
  }
}

export default async function setup(): Promise<void> {
  const problems: string[] = [];
  await assertServices().catch((err: unknown) => {
    problems.push(err instanceof Error ? err.message : String(err));
  });
  await chromiumExecutable().catch((err: unknown) => {
    problems.push(err instanceof Error ? err.message : String(err));
  });
  if (problems.length > 0) throw new Error(problems.join('\n'));
}
