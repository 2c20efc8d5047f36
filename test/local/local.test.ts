/**
 * `npm start`'s composition, played like a person through the Telegram fake: /start → menu;
 * Top up → a preset → a payment link; paying on the Razorpay fake (signed webhook to the
 * gateway) → credited, and Balance shows it; Play → starting, the tier and price, then
 * "ready" with the host, port and PIN the simulated agent reported; Stop → stopped.
 * Every piece is the real one (gateway, worker, routers, effects runners, SDKs against the
 * fakes); only the timers are shortened.
 */
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { FakeMessage } from '../../deploy/fakes/telegram/index.ts';
import type { LocalRun } from '../../deploy/local/index.ts';
import { startLocalRun, type LocalTestRun } from '../support/local-run.ts';
import { eventually } from '../support/runtime-env.ts';

let local: LocalTestRun | undefined;
let run: LocalRun;
const player = { id: 7_001, first_name: 'Asha' };

beforeAll(async () => {
  local = await startLocalRun({
    timings: {
      lroLatencyMs: 100,
      lroPolls: 1,
      azurePollMs: 50,
      agentBootMs: 200,
      agentHeartbeatMs: 1_000,
      timerPollMs: 100,
      perChatIntervalMs: 50,
    },
    billing: { settleIntervalMs: 1_000 },
  });
  run = local.run;
}, 60_000);

afterAll(async () => {
  await local?.stop();
});

function tg() {
  if (run.telegram === undefined) throw new Error('the Telegram fake is not running');
  return run.telegram;
}

/** What a message showed at some moment since `since` (it may be edited in place later). */
function shownSince(m: FakeMessage, since: number): string[] {
  const out = m.edits.filter((e) => e.replacedAt >= since).map((e) => e.text);
  if ((m.editedAt ?? m.sentAt) >= since) out.push(m.text);
  return out;
}

/** Waits for a bot message, sent or edited since `since`, that showed a matching text. */
async function botSays(pattern: RegExp, since: number, timeoutMs = 20_000): Promise<FakeMessage> {
  let found: FakeMessage | undefined;
  try {
    await eventually(
      `the bot to say ${pattern}`,
      () => {
        found = tg()
          .sent(player.id)
          .find((m) => shownSince(m, since).some((t) => pattern.test(t)));
        return Promise.resolve(found !== undefined);
      },
      timeoutMs,
    );
  } catch (err) {
    const said = tg()
      .sent(player.id)
      .map((m) => [...m.edits.map((e) => `(edited away) ${e.text}`), m.text].join('\n'));
    throw new Error(`${String(err)}; the bot said:\n${said.join('\n---\n')}`, { cause: err });
  }
  return found!;
}

const buttons = (m: FakeMessage) => m.replyMarkup?.inline_keyboard.flat() ?? [];

function press(m: FakeMessage, label: RegExp): void {
  const b = buttons(m).find((x) => label.test(x.text));
  if (b?.callback_data === undefined) {
    throw new Error(
      `no button ${label} on "${m.text}": ${buttons(m)
        .map((x) => x.text)
        .join(', ')}`,
    );
  }
  tg().pressButton(player, m.messageId, b.callback_data);
}

it('plays a whole session through the Telegram fake: top up, play, ready, stop', async () => {
  // /start → the menu.
  let since = Date.now();
  tg().userMessage(player, '/start');
  const menu = await botSays(/Welcome to Respawn/, since);
  expect(buttons(menu).map((b) => b.text)).toEqual(
    expect.arrayContaining([expect.stringMatching(/Play/), 'Top up', 'Balance']),
  );

  // Top up → a preset → a payment link from the Razorpay fake.
  since = Date.now();
  press(menu, /Top up/);
  const amounts = await botSays(/How much/, since);
  since = Date.now();
  press(amounts, /₹100/);
  await eventually('a payment link on the Razorpay fake', () =>
    Promise.resolve((run.razorpay?.links().length ?? 0) === 1),
  );
  const link = run.razorpay!.links()[0]!;
  expect(link.amount).toBe(10_000);
  await eventually('the link in the chat', () =>
    Promise.resolve(
      tg()
        .sent(player.id)
        .some(
          (m) =>
            shownSince(m, since).some((t) => t.includes(link.short_url)) ||
            buttons(m).some((b) => b.url === link.short_url) ||
            m.edits.some((e) =>
              e.replyMarkup?.inline_keyboard.flat().some((b) => b.url === link.short_url),
            ),
        ),
    ),
  );

  // Paying fires the signed webhook at the gateway → credited once.
  since = Date.now();
  const paid = await run.razorpay!.pay(link.id);
  expect(paid.deliveries.every((d) => d.status === 200)).toBe(true);
  await botSays(/₹100\.00 added\. Balance: ₹100\.00/, since);
  since = Date.now();
  press(menu, /Balance/);
  await botSays(/Balance: ₹100\.00/, since);

  // Play → starting, the tier and price, then ready with what the simulated agent reported.
  since = Date.now();
  press(menu, /Play/);
  await botSays(/Starting your rig/, since);
  await botSays(/Got a Spot GPU rig at ₹30\.00\/hour/, since);
  const ready = await botSays(/Your rig is ready/, since);
  const agent = run.agents?.agents()[0];
  expect(agent).toBeDefined();
  expect(ready.text).toContain(`${agent!.host}:47989`);
  expect(ready.text).toContain(`PIN ${agent!.pin}`);
  expect(agent!.host).toMatch(/^203\.0\.113\.\d+$/);

  // Stop → stopped; the VM is gone from the fake, and so is its agent.
  since = Date.now();
  press(menu, /Stop/);
  await botSays(/Session stopped after/, since);
  await eventually('no session VM left and no agent', () =>
    Promise.resolve(
      run.arm!.state.vms().filter((v) => v.tags.purpose === 'respawn-session').length === 0 &&
        run.agents!.agents().length === 0,
    ),
  );
}, 60_000);
