/**
 * JetStream publishes on the hot paths (the outbox, the ingress routers, the gateway), with one
 * reply subscription for all of them.
 *
 * nats.js makes every `js.publish` a request: a request object, a timer, a deferred, a
 * Promise.race, and on settling a `RequestError("cancelled")` built (stack trace and all) even
 * when the request succeeded. That was 2% of the worker's CPU and 2% of the gateway's in
 * bench:load. Here a publish is a plain PUB with a reply subject under one wildcard
 * subscription, a map entry, and one shared timer that expires overdue publishes.
 *
 * Same meaning as `js.publish`: resolves with the stream's acknowledgement (`duplicate` when
 * the Nats-Msg-Id was seen in the stream's window); rejects when no stream takes the subject
 * (503, no responders), when JetStream answers an error, on timeout, and when the connection
 * closes. `lastBySubject` reads a stream's last message on a subject the same way (a direct
 * get: the gateway's sent records, read before every Telegram send), where nats.js would also
 * build an error object for every record not found.
 */
import {
  createInbox,
  headers as natsHeaders,
  type Msg,
  type MsgHdrs,
  type NatsConnection,
  type Subscription,
} from '@nats-io/transport-node';
import { HeaderNames } from './headers.ts';

export interface PubAck {
  stream: string;
  seq: number;
  duplicate: boolean;
}

export interface PublishOptions {
  /** Nats-Msg-Id: a repeat within the stream's duplicate window is stored once. */
  msgID?: string;
  headers?: MsgHdrs;
  /** How long to wait for the acknowledgement (default: the publisher's). */
  timeout?: number;
  /** Stored only if the subject's last message has this sequence (0: it has none). */
  expectLastSubjectSequence?: number;
}

/** A message read back from a stream. */
export interface StoredMsg {
  seq: number;
  data: Uint8Array;
}

export interface JsPublisher {
  publish(subject: string, data: Uint8Array, opts?: PublishOptions): Promise<PubAck>;
  /**
   * The stream's last message on `subject`, undefined when it has none. The stream must allow
   * direct gets (`allow_direct`); rejects like `publish` otherwise.
   */
  lastBySubject(stream: string, subject: string): Promise<StoredMsg | undefined>;
  /** Rejects what is still waiting and drops the subscription; safe to call twice. */
  close(): void;
}

/** What publishes to JetStream with an acknowledgement: a JsPublisher, or nats.js's client. */
export type Publisher = Pick<JsPublisher, 'publish'>;

/** A publish JetStream did not acknowledge. `code` is JetStream's error code when it gave one. */
export class JsPublishError extends Error {
  constructor(
    message: string,
    readonly code?: number,
    readonly apiCode?: number,
  ) {
    super(message);
    this.name = 'JsPublishError';
  }
}

interface Waiting {
  /** Settles the caller's promise from the reply. */
  onReply: (m: Msg) => void;
  reject: (err: Error) => void;
  subject: string;
  deadline: number;
}

interface ApiReply {
  stream?: string;
  seq?: number;
  duplicate?: boolean;
  error?: { code?: number; err_code?: number; description?: string };
}

const decoder = new TextDecoder();

/** The inbox prefix the connection was made with (its user may subscribe only under it). */
function inboxPrefixOf(nc: NatsConnection): string | undefined {
  const options = (nc as { options?: { inboxPrefix?: unknown } }).options;
  return typeof options?.inboxPrefix === 'string' ? options.inboxPrefix : undefined;
}

export function createJsPublisher(
  nc: NatsConnection,
  opts: { timeoutMs?: number; sweepMs?: number } = {},
): JsPublisher {
  const timeoutMs = opts.timeoutMs ?? 5_000;
  const prefix = createInbox(inboxPrefixOf(nc));
  const waiting = new Map<string, Waiting>();
  let next = 0;
  let closed = false;

  const settle = (token: string, m: Msg): void => {
    const w = waiting.get(token);
    if (w === undefined) return; // Expired already, or not ours.
    waiting.delete(token);
    if (m.data.length === 0 && m.headers?.code === 503) {
      w.reject(new JsPublishError(`no stream takes ${w.subject}`, 503));
      return;
    }
    w.onReply(m);
  };

  const acknowledged =
    (subject: string, resolve: (ack: PubAck) => void, reject: (err: Error) => void) =>
    (m: Msg): void => {
      let reply: ApiReply;
      try {
        reply = JSON.parse(decoder.decode(m.data)) as ApiReply;
      } catch {
        reject(new JsPublishError(`unreadable acknowledgement for ${subject}`));
        return;
      }
      if (reply.error !== undefined) {
        reject(
          new JsPublishError(
            reply.error.description ?? 'JetStream refused the message',
            reply.error.code,
            reply.error.err_code,
          ),
        );
      } else if (typeof reply.stream !== 'string' || typeof reply.seq !== 'number') {
        reject(new JsPublishError(`not a JetStream acknowledgement for ${subject}`));
      } else {
        resolve({ stream: reply.stream, seq: reply.seq, duplicate: reply.duplicate === true });
      }
    };

  /** A direct get's reply: the message with its sequence in a header, or a status. */
  const stored =
    (subject: string, resolve: (m: StoredMsg | undefined) => void, reject: (e: Error) => void) =>
    (m: Msg): void => {
      const code = m.headers?.code ?? 0;
      if (code === 404) {
        resolve(undefined);
        return;
      }
      const seq = Number(m.headers?.get('Nats-Sequence'));
      if (code !== 0 || !Number.isInteger(seq) || seq <= 0) {
        reject(
          new JsPublishError(
            `direct get of ${subject} failed: ${m.headers?.description || `status ${code}`}`,
            code === 0 ? undefined : code,
          ),
        );
        return;
      }
      resolve({ seq, data: m.data });
    };

  /** Sends `data` to `to` with a reply subject under the shared inbox. */
  function request<T>(
    to: string,
    data: Uint8Array,
    h: MsgHdrs | undefined,
    timeout: number | undefined,
    reply: (resolve: (v: T) => void, reject: (e: Error) => void) => (m: Msg) => void,
  ): Promise<T> {
    if (closed) return Promise.reject(new JsPublishError('publisher closed'));
    const token = (next++).toString(36);
    return new Promise<T>((resolve, reject) => {
      waiting.set(token, {
        onReply: reply(resolve, reject),
        reject,
        subject: to,
        deadline: performance.now() + (timeout ?? timeoutMs),
      });
      try {
        nc.publish(to, data, {
          reply: `${prefix}.${token}`,
          ...(h === undefined ? {} : { headers: h }),
        });
      } catch (err) {
        waiting.delete(token);
        reject(err instanceof Error ? err : new JsPublishError(String(err)));
      }
    });
  }

  const empty = new Uint8Array(0);

  const sub: Subscription = nc.subscribe(`${prefix}.*`, {
    callback: (err, m) => {
      if (err !== null) return;
      settle(m.subject.slice(prefix.length + 1), m);
    },
  });

  const failAll = (why: string): void => {
    for (const [token, w] of waiting) {
      waiting.delete(token);
      w.reject(new JsPublishError(`${why} (publish to ${w.subject})`));
    }
  };

  // One timer for every publish in flight, rather than one each.
  const sweepMs = opts.sweepMs ?? Math.max(10, Math.min(250, Math.floor(timeoutMs / 4)));
  const sweeper = setInterval(() => {
    const now = performance.now();
    for (const [token, w] of waiting) {
      if (w.deadline > now) continue;
      waiting.delete(token);
      w.reject(new JsPublishError(`no acknowledgement for ${w.subject} in time`, 408));
    }
  }, sweepMs);
  sweeper.unref();

  const close = (): void => {
    if (closed) return;
    closed = true;
    clearInterval(sweeper);
    failAll('publisher closed');
    sub.unsubscribe();
  };
  void nc.closed().then(() => close());

  return {
    publish(subject, data, o = {}) {
      const h = o.headers ?? natsHeaders();
      if (o.msgID !== undefined) h.set(HeaderNames.msgId, o.msgID);
      if (o.expectLastSubjectSequence !== undefined) {
        h.set('Nats-Expected-Last-Subject-Sequence', String(o.expectLastSubjectSequence));
      }
      return request<PubAck>(subject, data, h, o.timeout, (res, rej) =>
        acknowledged(subject, res, rej),
      );
    },
    lastBySubject(stream, subject) {
      // The subject in the API subject (nats-server 2.9+), as nats.js's KV reads do: a user
      // may be allowed direct gets of one stream's subjects only.
      return request<StoredMsg | undefined>(
        `$JS.API.DIRECT.GET.${stream}.${subject}`,
        empty,
        undefined,
        undefined,
        (res, rej) => stored(subject, res, rej),
      );
    },
    close,
  };
}
