/**
 * Effects for the gateway to carry out: `respawn.out.telegram.<chatId>`. The gateway sends
 * each once (Nats-Msg-Id de-duplication plus its own record) within Telegram's limits.
 */
import { z } from 'zod';
import { chatIdSchema } from './ids.ts';
import { defineMessage } from './message.ts';

const button = z.object({
  text: z.string().min(1).max(64),
  /** Callback data: a verb the bot router understands, e.g. `play`, `stop`, `topup:50000`. */
  data: z.string().min(1).max(64),
});

export const TelegramSend = defineMessage('telegram.send.v1', {
  chatId: chatIdSchema,
  text: z.string().min(1).max(4096),
  /** Rows of inline buttons. */
  buttons: z.array(z.array(button).max(4)).max(6).optional(),
  /**
   * Messages with the same key replace each other in place (edit), e.g. one live status
   * message per session; absent means a new message. Room for a session id (64) and a prefix.
   */
  editKey: z
    .string()
    .regex(/^[A-Za-z0-9_:-]{1,128}$/)
    .optional(),
  /**
   * With an editKey: sent as a new message all the same (it notifies, where an edit does not),
   * and it takes the key over, so later sends with that key edit this one. For news in a
   * status message's story: a rig got after a wait in line, a start that failed.
   */
  fresh: z.literal(true).optional(),
  /**
   * An answer the player can ask for again (/status, Balance, Help): while it still waits for
   * its chat's turn, a newer message to the same chat with the same key makes it pointless,
   * and the gateway drops it (acked and recorded, never sent). Like FCM's `collapse_key`.
   * Absent: always sent.
   */
  collapseKey: z
    .string()
    .regex(/^[a-z0-9_:-]{1,32}$/)
    .optional(),
  /** Open this URL (a payment link) from a button. */
  url: z.url().optional(),
});
