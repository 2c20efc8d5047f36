import { describe, expect, it } from 'vitest';
import {
  BillingBalance,
  BillingHistory,
  BillingRegister,
  BillingTopup,
  ErrorCodes,
  SessionStart,
  SessionSettings,
  SessionStatus,
  SessionStop,
  TelegramSend,
  TerminalError,
} from '../../contracts/index.ts';
import {
  createTelegramRoute,
  routeTelegramUpdate,
  type RoutedCommand,
} from '../../actors/ingress/index.ts';

const enc = new TextEncoder();
const body = (v: unknown): Uint8Array => enc.encode(JSON.stringify(v));

const PLAYER = 7_001_234;
const user = { id: PLAYER, is_bot: false, first_name: 'Asha', language_code: 'en' };
const privateChat = { id: PLAYER, type: 'private', first_name: 'Asha' };
const group = { id: -1_001_234_567_890, type: 'supergroup', title: 'Gamers' };

const textUpdate = (updateId: number, text: string, chat: object = privateChat) => ({
  update_id: updateId,
  message: {
    message_id: 10,
    from: user,
    chat,
    date: 1_700_000_000,
    text,
    ...(text.startsWith('/')
      ? { entities: [{ offset: 0, length: text.split(' ')[0]!.length, type: 'bot_command' }] }
      : {}),
  },
});

const press = (updateId: number, data: string, chat: object = privateChat) => ({
  update_id: updateId,
  callback_query: {
    id: '4382bfdwdsb323b2d9',
    from: user,
    message: { message_id: 55, from: { id: 1, is_bot: true }, chat, date: 1, text: 'menu' },
    chat_instance: '-1234',
    data,
  },
});

const route = (u: unknown): RoutedCommand[] => routeTelegramUpdate(body(u));

function only(cmds: RoutedCommand[]): RoutedCommand {
  expect(cmds).toHaveLength(1);
  return cmds[0]!;
}

const playerSubject = (kind: string, verb: string) => `respawn.${kind}.${PLAYER}.cmd.${verb}`;
const outSubject = (chat: number | string) => `respawn.out.telegram.${chat}`;

function buttonData(c: RoutedCommand): string[] {
  return (TelegramSend.decode(c.data).buttons ?? []).flat().map((b) => b.data);
}

describe('the bot routes /start', () => {
  it('greets the player and shows the menu of seven buttons in their chat', () => {
    const [c, register, ...rest] = route(textUpdate(100, '/start'));
    expect(rest).toEqual([]);
    if (c === undefined || register === undefined) throw new Error('two commands expected');
    // …and opens the player's account with billing (once; the chat remembered).
    expect(register.subject).toBe(playerSubject('billing', 'register'));
    expect(register.msgId).toBe('tg-100-register');
    expect(BillingRegister.decode(register.data)).toEqual({
      type: BillingRegister.type,
      chatId: String(PLAYER),
    });
    expect(c.subject).toBe(outSubject(PLAYER));
    expect(c.msgId).toBe('tg-100-menu');
    const send = TelegramSend.decode(c.data);
    expect(send.chatId).toBe(String(PLAYER));
    expect(send.text).toContain('Welcome to Respawn, Asha');
    // Billing meters whole seconds (actors/billing/meter.ts), and the greeting says so.
    expect(send.text).toContain('paid by the second');
    expect(buttonData(c)).toEqual([
      'play',
      'stop',
      'status',
      'balance',
      'topup',
      'history',
      'help',
    ]);
  });

  it('accepts /start with a deep-link payload and a @botname suffix', () => {
    expect(route(textUpdate(101, '/start ref_abc')).map((c) => c.msgId)).toEqual([
      'tg-101-menu',
      'tg-101-register',
    ]);
    expect(route(textUpdate(102, '/start@RespawnBot')).map((c) => c.msgId)).toEqual([
      'tg-102-menu',
      'tg-102-register',
    ]);
  });
});

describe('menu buttons and typed commands reach the actors', () => {
  const cases: {
    action: string;
    subject: string;
    /** `updateId`: the routed update's update_id. */
    check: (c: RoutedCommand, updateId: number) => void;
  }[] = [
    {
      action: 'play',
      subject: playerSubject('session', 'start'),
      check: (c, updateId) =>
        expect(SessionStart.decode(c.data)).toEqual({
          type: 'session.start.v1',
          requestedBy: 'player',
          inputSeq: updateId,
          chatId: String(PLAYER),
        }),
    },
    {
      action: 'stop',
      subject: playerSubject('session', 'stop'),
      check: (c, updateId) =>
        expect(SessionStop.decode(c.data)).toEqual({
          type: 'session.stop.v1',
          requestedBy: 'player',
          inputSeq: updateId,
          reason: 'player',
        }),
    },
    {
      action: 'status',
      subject: playerSubject('session', 'status'),
      check: (c) =>
        expect(SessionStatus.decode(c.data)).toMatchObject({
          requestedBy: 'player',
          chatId: String(PLAYER),
        }),
    },
    {
      action: 'balance',
      subject: playerSubject('billing', 'balance'),
      check: (c) => expect(BillingBalance.decode(c.data).chatId).toBe(String(PLAYER)),
    },
    {
      action: 'history',
      subject: playerSubject('billing', 'history'),
      check: (c) =>
        expect(BillingHistory.decode(c.data)).toMatchObject({
          chatId: String(PLAYER),
          limit: 10,
        }),
    },
  ];

  it('the Stop button under a ready message stops that session only (stop:<session>)', () => {
    const c = only(route(press(202, `stop:${PLAYER}-3`)));
    expect(c.subject).toBe(playerSubject('session', 'stop'));
    expect(c.msgId).toBe('tg-202-stop');
    expect(SessionStop.decode(c.data)).toEqual({
      type: 'session.stop.v1',
      requestedBy: 'player',
      inputSeq: 202,
      reason: 'player',
      sessionId: `${PLAYER}-3`,
    });
    // Not a session id: a stale or forged button, ignored.
    expect(route(press(203, 'stop:a.b'))).toEqual([]);
    expect(route(press(204, 'stop:'))).toEqual([]);
  });

  for (const { action, subject, check } of cases) {
    it(`the ${action} button becomes one command on the player’s ${subject.split('.')[1]} subject`, () => {
      const c = only(route(press(200, action)));
      expect(c.subject).toBe(subject);
      expect(c.msgId).toBe(`tg-200-${action}`);
      check(c, 200);
    });

    it(`typed /${action} does the same as the button`, () => {
      const c = only(route(textUpdate(201, `/${action}`)));
      expect(c.subject).toBe(subject);
      expect(c.msgId).toBe(`tg-201-${action}`);
      check(c, 201);
    });
  }

  it('sets the message type header for every routed command', () => {
    expect(only(route(press(202, 'play'))).type).toBe('session.start.v1');
    expect(route(textUpdate(203, '/start')).map((c) => c.type)).toEqual([
      'telegram.send.v1',
      'billing.register.v1',
    ]);
  });

  it('/tier asks the session for the policy; its buttons set it', () => {
    const shown = only(route(textUpdate(210, '/tier')));
    expect(shown.subject).toBe(playerSubject('session', 'settings'));
    expect(SessionSettings.decode(shown.data)).toEqual({
      type: SessionSettings.type,
      requestedBy: 'player',
      chatId: String(PLAYER),
    });
    for (const [data, spotOnly] of [
      ['tier:spot', true],
      ['tier:any', false],
    ] as const) {
      const c = only(route(press(211, data)));
      expect(c.subject).toBe(playerSubject('session', 'settings'));
      expect(c.msgId).toBe('tg-211-tier');
      expect(SessionSettings.decode(c.data).spotOnly).toBe(spotOnly);
    }
    expect(route(press(212, 'tier:gold'))).toEqual([]);
  });

  it('reads commands case-insensitively (/PLAY)', () => {
    expect(only(route(textUpdate(204, '/PLAY'))).subject).toBe(playerSubject('session', 'start'));
  });
});

describe('top-ups', () => {
  it('Top up shows the preset amounts as buttons', () => {
    const c = only(route(press(300, 'topup')));
    expect(c.subject).toBe(outSubject(PLAYER));
    expect(buttonData(c)).toEqual(['topup:10000', 'topup:25000', 'topup:50000', 'topup:100000']);
    expect(TelegramSend.decode(c.data).buttons?.flat()[0]?.text).toBe('₹100.00');
  });

  it('shows the presets it is given', () => {
    const [c] = routeTelegramUpdate(body(textUpdate(301, '/topup')), undefined, {
      topupPresetsPaise: [5_000, 20_000],
    });
    expect(buttonData(c!)).toEqual(['topup:5000', 'topup:20000']);
  });

  it('a preset button becomes billing.topup.v1 whose request id comes from the update', () => {
    const c = only(route(press(302, 'topup:50000')));
    expect(c.subject).toBe(playerSubject('billing', 'topup'));
    expect(BillingTopup.decode(c.data)).toEqual({
      type: 'billing.topup.v1',
      requestId: 'tg-302',
      chatId: String(PLAYER),
      amountPaise: 50_000,
    });
  });

  it('a redelivered update is the same top-up: same message id and request id', () => {
    const a = only(route(press(303, 'topup:25000')));
    const b = only(route(press(303, 'topup:25000')));
    expect(b.msgId).toBe(a.msgId);
    expect(BillingTopup.decode(b.data).requestId).toBe(BillingTopup.decode(a.data).requestId);
    const other = only(route(press(304, 'topup:25000')));
    expect(BillingTopup.decode(other.data).requestId).not.toBe(
      BillingTopup.decode(a.data).requestId,
    );
  });
});

describe('help and what the bot does not act on', () => {
  it('Help (button or /help) answers with the list of commands', () => {
    for (const u of [press(400, 'help'), textUpdate(401, '/help')]) {
      const c = only(route(u));
      expect(c.subject).toBe(outSubject(PLAYER));
      expect(TelegramSend.decode(c.data).text).toContain('/play');
      // Asked again before it went out, only the newest Help is sent.
      expect(TelegramSend.decode(c.data).collapseKey).toBe('help');
    }
  });

  it('an unknown command gets a short helpful answer and no command', () => {
    const c = only(route(textUpdate(402, '/launch_missiles now')));
    expect(c.subject).toBe(outSubject(PLAYER));
    expect(c.msgId).toBe('tg-402-unknown');
    expect(TelegramSend.decode(c.data).text).toBe(
      "I don't know /launch_missiles. Send /help to see what I can do.",
    );
  });

  it('plain text gets a pointer to the menu, never a command', () => {
    const c = only(route(textUpdate(403, 'play please')));
    expect(c.subject).toBe(outSubject(PLAYER));
    expect(TelegramSend.decode(c.data).text).toContain('/start');
  });

  it('stickers and photos are ignored silently', () => {
    const base = { message_id: 11, from: user, chat: privateChat, date: 1 };
    expect(
      route({
        update_id: 404,
        message: { ...base, sticker: { file_id: 'x', width: 512, height: 512 } },
      }),
    ).toEqual([]);
    expect(
      route({ update_id: 405, message: { ...base, photo: [{ file_id: 'p' }], caption: '/play' } }),
    ).toEqual([]);
  });

  it('edited messages, channel posts and membership changes are ignored', () => {
    const m = textUpdate(406, '/play').message;
    expect(route({ update_id: 406, edited_message: { ...m, edit_date: 2 } })).toEqual([]);
    expect(
      route({
        update_id: 407,
        channel_post: {
          message_id: 1,
          chat: { id: -100, type: 'channel' },
          date: 1,
          text: '/play',
        },
      }),
    ).toEqual([]);
    expect(route({ update_id: 408, my_chat_member: { chat: privateChat, from: user } })).toEqual(
      [],
    );
  });

  it('in a group, a command gets one line asking for a private chat and acts on nothing', () => {
    const c = only(route(textUpdate(409, '/play', group)));
    expect(c.subject).toBe(outSubject(group.id));
    expect(TelegramSend.decode(c.data).text).toBe('Please talk to me in a private chat.');
    expect(route(textUpdate(410, 'hello all', group))).toEqual([]);
    expect(route(press(411, 'play', group))).toEqual([]);
  });

  it('in a group, a command addressed to another bot is ignored silently; ours still answers', () => {
    const opts = { botUsername: 'RespawnBot' };
    const routeAs = (u: unknown) => routeTelegramUpdate(body(u), undefined, opts);
    expect(routeAs(textUpdate(430, '/play@other_bot', group))).toEqual([]);
    expect(routeAs(textUpdate(431, '/help@OtherBot now', group))).toEqual([]);
    for (const [id, text] of [
      [432, '/play@RespawnBot'],
      [433, '/PLAY@respawnbot'],
      [434, '/play'],
    ] as const) {
      const c = only(routeAs(textUpdate(id, text, group)));
      expect(TelegramSend.decode(c.data).text).toBe('Please talk to me in a private chat.');
    }
  });

  it('in a private chat, a command addressed to another bot is ignored silently; ours acts', () => {
    const opts = { botUsername: '@respawnbot' };
    const routeAs = (u: unknown) => routeTelegramUpdate(body(u), undefined, opts);
    expect(routeAs(textUpdate(435, '/play@other_bot'))).toEqual([]);
    expect(routeAs(textUpdate(436, '/nope@other_bot'))).toEqual([]);
    expect(only(routeAs(textUpdate(437, '/play@RespawnBot'))).subject).toBe(
      playerSubject('session', 'start'),
    );
    expect(only(routeAs(textUpdate(438, '/play'))).subject).toBe(playerSubject('session', 'start'));
  });

  it('without its username, the bot ignores @-addressed commands in groups and takes them as its own in private', () => {
    expect(route(textUpdate(439, '/play@other_bot', group))).toEqual([]);
    expect(only(route(textUpdate(440, '/play', group))).msgId).toBe('tg-440-private-only');
    expect(only(route(textUpdate(441, '/play@RespawnBot'))).subject).toBe(
      playerSubject('session', 'start'),
    );
  });

  it('refuses a configured username Telegram would never give', () => {
    expect(() => createTelegramRoute({ botUsername: 'not a name' })).toThrow(/botUsername/);
    expect(() => createTelegramRoute({ botUsername: '@respawn_bot' })).not.toThrow();
  });

  it('callback queries with unknown, stale or missing data, or no message, are ignored', () => {
    expect(route(press(412, 'launch'))).toEqual([]);
    expect(route(press(413, 'topup:abc'))).toEqual([]);
    expect(route(press(414, 'topup:0'))).toEqual([]);
    const q = press(415, 'play').callback_query;
    expect(route({ update_id: 415, callback_query: { ...q, message: undefined } })).toEqual([]);
    expect(route({ update_id: 416, callback_query: { ...q, data: undefined } })).toEqual([]);
  });

  it('messages from bots are ignored', () => {
    const u = textUpdate(417, '/play');
    expect(route({ ...u, message: { ...u.message, from: { id: 9, is_bot: true } } })).toEqual([]);
  });
});

describe('input that is not a Telegram update', () => {
  const code = (data: Uint8Array): string => {
    try {
      routeTelegramUpdate(data);
    } catch (err) {
      if (err instanceof TerminalError) return err.code;
      throw err;
    }
    throw new Error('expected a TerminalError');
  };

  it('is a TerminalError naming why (so the router dead-letters it)', () => {
    expect(code(enc.encode('not json'))).toBe(ErrorCodes.invalidJson);
    expect(code(body({ hello: 'world' }))).toBe(ErrorCodes.invalidPayload);
    expect(code(body({ update_id: -1 }))).toBe(ErrorCodes.invalidPayload);
    expect(code(body({ update_id: 5, message: { text: '/play' } }))).toBe(
      ErrorCodes.invalidPayload,
    );
  });

  it('an update of a kind the bot does not know is ignored, not dead-lettered', () => {
    expect(route({ update_id: 500, poll_answer: { poll_id: '1', user, option_ids: [0] } })).toEqual(
      [],
    );
  });
});
