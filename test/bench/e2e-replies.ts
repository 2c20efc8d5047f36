/**
 * bench:e2e's reply matching: which message at the Bot API fake answered which command. Each
 * command's out message is looked up in the gateway's sent store (how it was settled, and the
 * Telegram message id it got); an answer the gateway dropped for a newer one with the same
 * collapseKey is answered by the next reply sent in its chat.
 */
import type { JetStreamManager } from '@nats-io/jetstream';
import { Streams, TELEGRAM_OUT_CONSUMER } from '../../contracts/index.ts';
import type { TelegramFake } from '../../deploy/fakes/telegram/index.ts';
import type { SentRecord, SentStore } from '../../gateway/index.ts';

/** What matching needs of a command: its out message's id in, its reply's time out. */
export interface Answerable {
  /** The out message's Nats-Msg-Id: the key of the gateway's record of how it was settled. */
  outMsgId?: string;
  /** When the reply that answered it reached the fake. */
  replyAt?: number;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Waits (at most the grace) until the bench has seen every command's out message and the
 * gateway's sender holds none unsettled: a consumer-info poll, cheap enough not to show in the
 * CPU figures, unlike reading every record.
 */
export async function awaitSettled(
  jsm: JetStreamManager,
  cmds: readonly Answerable[],
  graceMs: number,
): Promise<void> {
  const deadline = Date.now() + graceMs;
  while (Date.now() < deadline) {
    if (cmds.every((c) => c.outMsgId !== undefined)) {
      const ci = await jsm.consumers.info(Streams.out.name, TELEGRAM_OUT_CONSUMER);
      if (ci.num_pending === 0 && ci.num_ack_pending === 0) return;
    }
    await sleep(100);
  }
}

/** The gateway's records of the commands' out messages, read 256 at a time. */
async function settledRecords(
  store: SentStore,
  cmds: readonly Answerable[],
): Promise<(SentRecord | undefined)[]> {
  const recs: (SentRecord | undefined)[] = [];
  for (let i = 0; i < cmds.length; i += 256) {
    const chunk = cmds.slice(i, i + 256);
    recs.push(
      ...(await Promise.all(
        chunk.map(async (c) =>
          c.outMsgId === undefined
            ? undefined
            : store.settledFor(c.outMsgId).catch(() => undefined),
        ),
      )),
    );
  }
  return recs;
}

export interface Matched {
  missing: number;
  unexpected: number;
  collapsed: number;
}

/**
 * Sets each command's replyAt: the fake's stamp of the message the gateway recorded sending
 * for it, or, for an answer dropped unsent (collapsed), of the next reply sent in its chat.
 */
export async function matchReplies(
  store: SentStore,
  fake: TelegramFake,
  byChat: ReadonlyMap<number, Answerable[]>,
): Promise<Matched> {
  const m: Matched = { missing: 0, unexpected: 0, collapsed: 0 };
  const all = [...byChat.values()].flat();
  const index = new Map(all.map((c, i) => [c, i]));
  const settled = await settledRecords(store, all);
  for (const [chatId, list] of byChat) {
    const received = new Map(fake.sent(chatId).map((msg) => [msg.messageId, msg.sentAt]));
    let used = 0;
    let waiting: Answerable[] = [];
    for (const c of list) {
      const rec = settled[index.get(c)!];
      if (rec?.outcome === 'collapsed') {
        m.collapsed++;
        waiting.push(c);
        continue;
      }
      const at = rec?.outcome === 'sent' ? received.get(rec.messageId ?? NaN) : undefined;
      if (at === undefined) {
        m.missing++;
        continue;
      }
      used++;
      for (const w of [...waiting, c]) w.replyAt = at;
      waiting = [];
    }
    m.missing += waiting.length;
    m.unexpected += Math.max(0, received.size - used);
  }
  return m;
}
