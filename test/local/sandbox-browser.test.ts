/**
 * The sandbox chat page in a real headless Chromium, used like a person would: type /start,
 * press Top up and an amount, open the payment link, press Pay on the Razorpay fake's checkout
 * page (the signed webhook goes to the gateway), see the credit back in the chat; press Play,
 * see the rig start on the ARM fake and become ready with the host, port and PIN the simulated
 * agent reported; press Stop, see the duration, the charge and the balance. Every assertion is
 * on what the page shows. Chromium is Debian's package (`CHROMIUM_PATH` or /usr/bin/chromium),
 * driven by playwright-core; a missing browser fails the test with the command to install it.
 */
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { chromium, type Browser, type Locator, type Page } from 'playwright-core';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { LocalRun } from '../../deploy/local/index.ts';
import { chromiumExecutable } from '../global-setup.ts';
import { startLocalRun, type LocalTestRun } from '../support/local-run.ts';

const ROOT = path.resolve(import.meta.dirname, '../..');
/** Gitignored (`.tmp/`); kept after the run so a person can look at it. */
const SCREENSHOT = path.join(ROOT, '.tmp', 'screenshots', 'sandbox-browser.png');
const VIEWPORT = { width: 1000, height: 1500 };
/** Longest wait for one thing to appear on the page (a VM boot on the fake is well under). */
const STEP_MS = 20_000;

let local: LocalTestRun | undefined;
let run: LocalRun | undefined;
let browser: Browser | undefined;

beforeAll(async () => {
  // First, so a missing browser fails at once with how to install it.
  const executablePath = await chromiumExecutable();
  local = await startLocalRun({
    timings: {
      lroLatencyMs: 100,
      lroPolls: 1,
      azurePollMs: 50,
      agentBootMs: 300,
      agentHeartbeatMs: 1_000,
      timerPollMs: 100,
      perChatIntervalMs: 50,
    },
    billing: { settleIntervalMs: 1_000 },
  });
  run = local.run;
  browser = await chromium.launch({
    executablePath,
    // The closed network refuses Chromium's calls home; these keep it from trying.
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
    timeout: 30_000,
  });
}, 60_000);

afterAll(async () => {
  await browser?.close();
  await local?.stop();
});

/** The bot's chat bubble showing `text` (the newest one, if several match). */
const botMessage = (page: Page, text: RegExp): Locator =>
  page.locator('.msg.bot').filter({ hasText: text }).last();

/** "₹12.34" right after `label` in `text`, in paise. */
function paiseAfter(label: string, text: string): number {
  const m = new RegExp(`${label}₹([\\d,]+)\\.(\\d\\d)`).exec(text);
  if (m === null) throw new Error(`no amount after "${label}" in: ${text}`);
  return Number(m[1]!.replace(/,/g, '')) * 100 + Number(m[2]);
}

async function press(message: Locator, label: string | RegExp): Promise<void> {
  await message.getByRole('button', { name: label }).click();
}

it('plays a whole session in headless Chromium: top up and pay, play, ready, stop and the charge', async () => {
  const page = await browser!.newPage({ viewport: VIEWPORT });
  page.setDefaultTimeout(STEP_MS);
  // The page's own script must not fail along the way (an exception, a failed request).
  const pageErrors: string[] = [];
  page.on('pageerror', (err) => pageErrors.push(err.message));
  page.on('console', (m) => {
    if (m.type() === 'error') pageErrors.push(`${m.text()} (${m.location().url})`);
  });
  await page.goto(run!.sandboxUrl!);
  expect(await page.title()).toMatch(/Respawn/);
  await page.getByLabel('your Telegram id').fill('7301');
  await page.getByLabel('name').fill('Asha');

  // /start → the greeting and the menu.
  await page.getByPlaceholder(/Message/).fill('/start');
  await page.keyboard.press('Enter');
  await page.locator('.msg.user', { hasText: '/start' }).waitFor();
  const menu = botMessage(page, /Welcome to Respawn, Asha!/);
  await menu.waitFor();
  for (const label of ['▶️ Play', '⏹ Stop', 'Status', 'Balance', 'Top up', 'History', 'Help']) {
    await menu.getByRole('button', { name: label, exact: true }).waitFor();
  }

  // Top up → ₹100 → the payment link opens the Razorpay fake's checkout page.
  await press(menu, 'Top up');
  const amounts = botMessage(page, /How much would you like to add/);
  await press(amounts, '₹100.00');
  const payMessage = botMessage(page, /Pay ₹100\.00 to top up your Respawn wallet/);
  await payMessage.waitFor();
  // The bot edits this message when the money arrives: follow the bubble, not the text.
  const payBubble = page.locator(
    `.msg.bot[data-message-id="${await payMessage.getAttribute('data-message-id')}"]`,
  );
  const [checkout] = await Promise.all([
    page.waitForEvent('popup'),
    payMessage.getByRole('link', { name: 'Open link' }).click(),
  ]);
  await checkout.waitForLoadState();
  await checkout.getByRole('heading', { name: /Razorpay \(fake\) checkout/ }).waitFor();
  await checkout.getByText('₹100.00', { exact: true }).waitFor();
  await checkout.getByRole('button', { name: 'Pay ₹100.00' }).click();
  await checkout.getByText(/This link is paid/).waitFor();
  await checkout.close();

  // Back in the chat: the payment message says it is paid, in place (no link left to pay
  // twice), and the credit is a message of its own (a notification on the phone).
  await page.bringToFront();
  await payBubble.filter({ hasText: /Paid: ₹100\.00 top-up/ }).waitFor();
  expect(await payBubble.innerText()).toMatch(/edited/);
  expect(await payBubble.getByRole('link').count()).toBe(0);
  expect(await page.locator('.msg', { hasText: /Pay ₹100\.00 to top up/ }).count()).toBe(0);
  const credited = botMessage(page, /✅ ₹100\.00 added\. Balance: ₹100\.00\./);
  await credited.waitFor();
  expect(await credited.innerText()).not.toMatch(/edited/);

  // Play → starting, the rig allocated on the ARM fake, then ready with host, port and PIN.
  // "Starting your rig…" is one status message, edited in place into the rig got.
  await press(menu, '▶️ Play');
  const got = botMessage(page, /Got a Spot GPU rig at ₹30\.00\/hour/);
  await got.waitFor();
  expect(await got.innerText()).toMatch(/edited/);
  expect(await page.locator('.msg', { hasText: /Starting your rig/ }).count()).toBe(0);
  const ready = botMessage(page, /Your rig is ready/);
  await ready.waitFor();
  expect(await ready.innerText()).toMatch(
    /Your rig is ready \(Spot, ₹30\.00\/hour\)\. Connect with Moonlight to 203\.0\.113\.\d+:47989, pairing PIN \d{4}\b/,
  );
  // With the way out on it.
  expect(await ready.getByRole('button', { name: 'Stop' }).count()).toBe(1);

  // Play a little: Balance, pressed now and then, shows the meter running (₹30/h is about a
  // paisa every 1.2 s), so the stop below has something to charge.
  const running = page
    .locator('.msg.bot')
    .filter({ hasText: /Balance: ₹[\d,]+\.\d\d \(including the session running now\)/ });
  await expect
    .poll(
      async () => {
        const before = await running.count();
        await press(menu, 'Balance');
        return paiseAfter('Balance: ', await running.nth(before).innerText());
      },
      { timeout: STEP_MS, interval: 1_000 },
    )
    .toBeLessThan(10_000);

  // Stop, with the ready message's own button (`stop:<session>`) → how long it ran (the
  // session), what it cost and what is left (billing). "Stopping your session…" is edited in
  // place into how long it ran.
  await press(ready, 'Stop');
  const stopped = botMessage(
    page,
    /Session stopped after \d+ (seconds?|minutes?): you pressed Stop\. Your disk is saved\./,
  );
  await stopped.waitFor();
  expect(await stopped.innerText()).toMatch(/edited/);
  expect(await page.locator('.msg', { hasText: /Stopping your session/ }).count()).toBe(0);
  const bill = botMessage(
    page,
    /Charged ₹[\d,]+\.\d\d for this session\. Balance: ₹[\d,]+\.\d\d\./,
  );
  await bill.waitFor();
  const billText = await bill.innerText();
  const charged = paiseAfter('Charged ', billText);
  expect(charged).toBeGreaterThan(0);
  expect(charged + paiseAfter('Balance: ', billText)).toBe(10_000);

  // Nothing went wrong on the way: no error in the status line, none in the page's script.
  expect(await page.getByRole('status').innerText()).toBe('');
  expect(pageErrors).toEqual([]);

  // A picture of the whole conversation, for a person to look at.
  await mkdir(path.dirname(SCREENSHOT), { recursive: true });
  await page.screenshot({ path: SCREENSHOT });
  const png = await readFile(SCREENSHOT);
  expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
  expect(png.subarray(12, 16).toString('latin1')).toBe('IHDR');
  expect({ width: png.readUInt32BE(16), height: png.readUInt32BE(20) }).toEqual(VIEWPORT);
  expect(png.length).toBeGreaterThan(20_000);
  await page.close();
}, 60_000);
