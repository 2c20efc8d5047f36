/** What the bot router itself says. Kept apart so wording changes never touch the routing. */
import { BotActions, rupees, topupCallbackData } from '../../contracts/index.ts';

export interface Button {
  text: string;
  data: string;
}

export const menuButtons: Button[][] = [
  [
    { text: '▶️ Play', data: BotActions.play },
    { text: '⏹ Stop', data: BotActions.stop },
  ],
  [
    { text: 'Status', data: BotActions.status },
    { text: 'Balance', data: BotActions.balance },
  ],
  [
    { text: 'Top up', data: BotActions.topup },
    { text: 'History', data: BotActions.history },
  ],
  [{ text: 'Help', data: BotActions.help }],
];

/** Three amounts a row, in the order given. */
export function topupButtons(presetsPaise: readonly number[]): Button[][] {
  const buttons = presetsPaise.map((p) => ({ text: rupees(p), data: topupCallbackData(p) }));
  const rows: Button[][] = [];
  for (let i = 0; i < buttons.length && rows.length < 6; i += 3) rows.push(buttons.slice(i, i + 3));
  return rows;
}

export const botTexts = {
  welcome: (firstName: string | undefined): string =>
    [
      `Welcome to Respawn${firstName === undefined ? '' : `, ${firstName.slice(0, 64)}`}!`,
      'I rent you a cloud GPU rig to play your games, paid by the second from a prepaid wallet.',
      'Top up, then press Play. Your disk is kept between sessions.',
    ].join('\n'),
  help: [
    'What I can do:',
    '/play – start a gaming rig (Spot first, On-Demand if none is free)',
    '/stop – stop your session (your disk is kept)',
    '/status – what your session is doing',
    '/balance – your wallet balance',
    '/topup – add money to your wallet',
    '/history – your latest wallet entries',
    '/tier – Spot only, or Spot then On-Demand (about 3× the price) when no Spot GPU is free',
    '/start – the menu',
  ].join('\n'),
  topup: 'How much would you like to add to your wallet?',
  unknownCommand: (name: string): string =>
    `I don't know /${name}. Send /help to see what I can do.`,
  notACommand: 'I understand buttons and commands. Send /start for the menu or /help for the list.',
  privateOnly: 'Please talk to me in a private chat.',
};
