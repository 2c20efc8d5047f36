/**
 * Delivering one recorded message to a target deployment:
 *
 * - `stream`: published straight to its ingress subject with the recorded headers. The
 *   recorded Nats-Msg-Id is kept, so replaying the same file twice within JetStream's
 *   de-duplication window stores each message once; RECORDED_TIME_HEADER carries its time.
 * - `http`: POSTed to the gateway's endpoint for its source, authenticated with the TARGET's
 *   secrets exactly as the real sender would: Telegram's secret token header, Razorpay's
 *   HMAC-SHA256 (hex) of the raw body with the event id taken from the recorded Nats-Msg-Id,
 *   the per-VM agent token derived from the agent master secret. The body is sent byte for
 *   byte, so the gateway stores what was recorded under the same Nats-Msg-Id.
 *
 * A failure is returned, never thrown: the replay counts it against the message's line.
 */
import { createHmac } from 'node:crypto';
import { jetstream, type JetStreamClient } from '@nats-io/jetstream';
import { headers as natsHeaders, type NatsConnection } from '@nats-io/transport-node';
import {
  AgentReport,
  HeaderNames,
  IngressSources,
  RAZORPAY_INGRESS_MSG_PREFIX,
  agentToken,
  ingressSubject,
} from '../../contracts/index.ts';
import { RECORDED_TIME_HEADER, type RecordedMessage } from './format.ts';

export interface HttpSecrets {
  telegramSecretToken: string;
  razorpayWebhookSecret: string;
  agentMasterSecret: string;
}

export type SendResult = { ok: true; duplicate: boolean } | { ok: false; reason: string };

export type Sender = (m: RecordedMessage) => Promise<SendResult>;

/** Header names the HTTP endpoints read (gateway/http/*.ts). */
export const GatewayHeaders = {
  telegramSecret: 'X-Telegram-Bot-Api-Secret-Token',
  razorpaySignature: 'X-Razorpay-Signature',
  razorpayEventId: 'X-Razorpay-Event-Id',
  agentToken: 'X-Respawn-Agent-Token',
} as const;

export const GatewayPaths = {
  telegram: '/telegram/webhook',
  razorpay: '/razorpay/webhook',
  agent: '/agent/report',
} as const;

function first(m: RecordedMessage, name: string): string | undefined {
  const want = name.toLowerCase();
  for (const [k, v] of Object.entries(m.headers)) if (k.toLowerCase() === want) return v[0];
  return undefined;
}

export function recordedMsgId(m: RecordedMessage): string | undefined {
  return first(m, HeaderNames.msgId);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

export function streamSender(nc: NatsConnection, opts: { timeoutMs?: number } = {}): Sender {
  const js: JetStreamClient = jetstream(nc);
  return async (m) => {
    const h = natsHeaders();
    for (const [k, values] of Object.entries(m.headers)) {
      // JetStream's own control headers (expected sequences, rollups) are not replayed; the
      // message id goes in as msgID below.
      if (k.toLowerCase().startsWith('nats-') || k === RECORDED_TIME_HEADER) continue;
      for (const v of values) h.append(k, v);
    }
    h.set(RECORDED_TIME_HEADER, m.time);
    const msgID = recordedMsgId(m);
    try {
      const ack = await js.publish(ingressSubject(m.source), Buffer.from(m.data, 'base64'), {
        headers: h,
        ...(msgID === undefined ? {} : { msgID }),
        timeout: opts.timeoutMs ?? 5_000,
      });
      return { ok: true, duplicate: ack.duplicate };
    } catch (err) {
      return { ok: false, reason: `publish failed: ${errorText(err)}` };
    }
  };
}

/** The HTTP request that delivers `m` to the gateway, signed with the target's secrets. */
export function gatewayRequest(
  m: RecordedMessage,
  secrets: HttpSecrets,
): { path: string; headers: Record<string, string>; body: Buffer } | { error: string } {
  const body = Buffer.from(m.data, 'base64');
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const traceparent = first(m, HeaderNames.traceparent);
  if (traceparent !== undefined) headers.traceparent = traceparent;
  switch (m.source) {
    case IngressSources.telegram:
      headers[GatewayHeaders.telegramSecret] = secrets.telegramSecretToken;
      return { path: GatewayPaths.telegram, headers, body };
    case IngressSources.razorpay: {
      const msgId = recordedMsgId(m);
      if (msgId === undefined || !msgId.startsWith(RAZORPAY_INGRESS_MSG_PREFIX)) {
        return {
          error: `a Razorpay webhook needs its event id: Nats-Msg-Id ${msgId ?? '(none)'} is not ${RAZORPAY_INGRESS_MSG_PREFIX}<event id>`,
        };
      }
      headers[GatewayHeaders.razorpayEventId] = msgId.slice(RAZORPAY_INGRESS_MSG_PREFIX.length);
      headers[GatewayHeaders.razorpaySignature] = createHmac(
        'sha256',
        secrets.razorpayWebhookSecret,
      )
        .update(body)
        .digest('hex');
      return { path: GatewayPaths.razorpay, headers, body };
    }
    case IngressSources.agent: {
      let vmName: string;
      try {
        vmName = AgentReport.decode(body).vmName;
      } catch (err) {
        return { error: `not an agent report, cannot sign it: ${errorText(err)}` };
      }
      headers[GatewayHeaders.agentToken] = agentToken(secrets.agentMasterSecret, vmName);
      return { path: GatewayPaths.agent, headers, body };
    }
  }
}

/** What the gateway answered, as a result: 2xx is delivered unless the update was dropped. */
async function readAnswer(res: Response): Promise<SendResult> {
  const text = await res.text();
  let answer: unknown;
  try {
    answer = JSON.parse(text);
  } catch {
    answer = undefined;
  }
  const field = (k: string): unknown =>
    typeof answer === 'object' && answer !== null
      ? (answer as Record<string, unknown>)[k]
      : undefined;
  if (!res.ok) {
    const message = field('message');
    return {
      ok: false,
      reason: `HTTP ${res.status}${typeof message === 'string' ? `: ${message}` : ''}`,
    };
  }
  const dropped = field('dropped');
  // Answered 200 so Telegram would not retry, but not stored (e.g. the player rate limit).
  if (typeof dropped === 'string') return { ok: false, reason: `gateway dropped it: ${dropped}` };
  return { ok: true, duplicate: field('duplicate') === true };
}

export function httpSender(
  gatewayUrl: string,
  secrets: HttpSecrets,
  opts: { timeoutMs?: number } = {},
): Sender {
  return async (m) => {
    const req = gatewayRequest(m, secrets);
    if ('error' in req) return { ok: false, reason: req.error };
    try {
      const res = await fetch(new URL(req.path, gatewayUrl), {
        method: 'POST',
        headers: req.headers,
        body: req.body,
        signal: AbortSignal.timeout(opts.timeoutMs ?? 10_000),
      });
      return await readAnswer(res);
    } catch (err) {
      return { ok: false, reason: `POST ${req.path} failed: ${errorText(err)}` };
    }
  };
}
