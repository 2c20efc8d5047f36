/**
 * Where spans go. Without an OTLP endpoint nothing leaves the process (while trace context is
 * still made and carried); with `OTEL_EXPORTER_OTLP_ENDPOINT` spans arrive at an OTLP/HTTP
 * receiver, from this process and from the gateway's own entry point (`gateway/main.ts`),
 * whose HTTP and Redis instrumentation must work although its modules load as ES modules
 * before telemetry starts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import diagnosticsChannel from 'node:diagnostics_channel';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { headers as natsHeaders } from '@nats-io/transport-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  HeaderNames,
  SpanKind,
  Streams,
  TelemetryConfigError,
  extractTrace,
  ingressSubject,
  injectTrace,
  loadTelemetryConfig,
  startTelemetry,
  traceIdOf,
  withSpan,
} from '../../contracts/index.ts';
import { redisPrefix, redisUrl } from '../harness/index.ts';
import { eventually, quietLog } from '../support/runtime-env.ts';
import {
  BOT_TOKEN,
  RAZORPAY_SECRET,
  TELEGRAM_SECRET,
  postUpdate,
  startBus,
  stored,
  textUpdate,
  type Bus,
} from '../gateway/support.ts';
import { startTelegramFake, type TelegramFake } from '../../deploy/fakes/telegram/index.ts';

interface OtlpSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
}
interface Received {
  path: string;
  contentType: string | undefined;
  service: string[];
  scopes: string[];
  spans: OtlpSpan[];
}

/** An OTLP/HTTP receiver (JSON, what exporter-trace-otlp-http sends) on a random port. */
async function startReceiver(): Promise<{
  url: string;
  received: Received[];
  close(): Promise<void>;
}> {
  const received: Received[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
        resourceSpans?: {
          resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
          scopeSpans?: { scope?: { name: string }; spans?: OtlpSpan[] }[];
        }[];
      };
      for (const rs of body.resourceSpans ?? []) {
        received.push({
          path: req.url ?? '',
          contentType: req.headers['content-type'],
          service: (rs.resource?.attributes ?? [])
            .filter((a) => a.key === 'service.name')
            .map((a) => a.value.stringValue ?? ''),
          scopes: (rs.scopeSpans ?? []).map((s) => s.scope?.name ?? ''),
          spans: (rs.scopeSpans ?? []).flatMap((s) => s.spans ?? []),
        });
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{}');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    received,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

let receiver: Awaited<ReturnType<typeof startReceiver>>;
beforeAll(async () => {
  receiver = await startReceiver();
});
afterAll(async () => {
  await receiver?.close();
});

describe('telemetry configuration', () => {
  it('names every invalid OTEL_* variable and derives the traces URL from the base endpoint', () => {
    expect(() =>
      loadTelemetryConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', OTEL_TRACES_EXPORTER: 'zipkin' },
        'respawn-x',
      ),
    ).toThrow(TelemetryConfigError);
    try {
      loadTelemetryConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318', OTEL_TRACES_EXPORTER: 'zipkin' },
        'respawn-x',
      );
    } catch (err) {
      expect(String(err)).toContain('OTEL_EXPORTER_OTLP_ENDPOINT');
      expect(String(err)).toContain('OTEL_TRACES_EXPORTER');
    }
    expect(loadTelemetryConfig({}, 'respawn-x')).toEqual({
      serviceName: 'respawn-x',
      tracesUrl: undefined,
      disabled: false,
    });
    expect(
      loadTelemetryConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318/', OTEL_SERVICE_NAME: 'gw-eu' },
        'respawn-x',
      ),
    ).toMatchObject({ serviceName: 'gw-eu', tracesUrl: 'http://otel:4318/v1/traces' });
    expect(
      loadTelemetryConfig(
        {
          OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318',
          OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'https://traces.example/ingest',
        },
        'respawn-x',
      ).tracesUrl,
    ).toBe('https://traces.example/ingest');
    expect(
      loadTelemetryConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: 'http://otel:4318', OTEL_TRACES_EXPORTER: 'none' },
        'respawn-x',
      ).tracesUrl,
    ).toBeUndefined();
  });
});

/** A producer span, its context through NATS headers, and a consumer span: one "hop". */
async function oneHop(): Promise<{
  traceId: string | undefined;
  traceparent: string;
  consumerTraceId: string | undefined;
  recorded: boolean;
}> {
  const h = natsHeaders();
  let recorded = false;
  const traceId = await withSpan('publish test.subject', { kind: SpanKind.PRODUCER }, (span) => {
    injectTrace(h);
    recorded = span.isRecording();
    return Promise.resolve(traceIdOf(span));
  });
  const consumerTraceId = await withSpan(
    'process test.subject',
    { kind: SpanKind.CONSUMER, parent: extractTrace(h) },
    (span) => Promise.resolve(traceIdOf(span)),
  );
  return { traceId, traceparent: h.get(HeaderNames.traceparent), consumerTraceId, recorded };
}

describe('in this process', () => {
  it('makes and carries trace context but sends nothing when no OTLP endpoint is set', async () => {
    // Any HTTP request this process makes is seen here, whatever its destination.
    const requests: string[] = [];
    const onRequest = (msg: unknown): void => {
      const r = (msg as { request: http.ClientRequest }).request;
      requests.push(`${r.method} ${r.host}${r.path}`);
    };
    diagnosticsChannel.subscribe('http.client.request.start', onRequest);
    try {
      const telemetry = await startTelemetry({
        config: loadTelemetryConfig({ OTEL_SERVICE_NAME: 'respawn-silent' }, 'respawn-test'),
        log: quietLog(),
        instrument: false,
      });
      expect(telemetry.exporting).toBe(false);
      const hop = await oneHop();
      expect(hop.traceId, 'trace ids are made').toMatch(/^[0-9a-f]{32}$/);
      expect(hop.traceparent).toContain(hop.traceId);
      expect(hop.consumerTraceId, 'and carried to the next hop').toBe(hop.traceId);
      // Nowhere for spans to go: none is recorded (they cost most of a busy process's CPU).
      expect(hop.recorded).toBe(false);
      expect(hop.traceparent).toMatch(/-00$/);
      await telemetry.forceFlush();
      await telemetry.shutdown();
    } finally {
      diagnosticsChannel.unsubscribe('http.client.request.start', onRequest);
    }
    expect(requests, 'no HTTP request left the process').toEqual([]);
    expect(receiver.received).toEqual([]);
  });

  it('exports spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT', async () => {
    const telemetry = await startTelemetry({
      config: loadTelemetryConfig(
        { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url, OTEL_SERVICE_NAME: 'respawn-export-test' },
        'respawn-test',
      ),
      log: quietLog(),
      instrument: false,
    });
    expect(telemetry.exporting).toBe(true);
    const hop = await oneHop();
    expect(hop.recorded).toBe(true);
    expect(hop.traceparent).toMatch(/-01$/);
    // Shutdown flushes what the batch processor holds.
    await telemetry.shutdown();
    const mine = receiver.received.filter((r) => r.service.includes('respawn-export-test'));
    expect(mine.length).toBeGreaterThan(0);
    expect(mine[0]!.path).toBe('/v1/traces');
    expect(mine[0]!.contentType).toContain('application/json');
    const spans = mine.flatMap((r) => r.spans);
    const publish = spans.find((s) => s.name === 'publish test.subject');
    const process = spans.find((s) => s.name === 'process test.subject');
    expect(publish?.traceId).toBe(hop.traceId);
    expect(process?.traceId).toBe(hop.traceId);
    expect(process?.parentSpanId).toBe(publish?.spanId);
  });
});

describe('the gateway process', () => {
  let bus: Bus;
  let fake: TelegramFake;
  let child: ChildProcess | undefined;
  let output = '';

  beforeAll(async () => {
    bus = await startBus();
    fake = await startTelegramFake({ token: BOT_TOKEN });
  });
  afterAll(async () => {
    if (child !== undefined && child.exitCode === null) {
      const gone = new Promise((r) => child!.once('exit', r));
      child.kill('SIGTERM');
      await gone;
    }
    await fake?.stop();
    await bus?.dispose();
  });

  it('exports its webhook, publish, Redis and HTTP spans when OTEL_EXPORTER_OTLP_ENDPOINT is set', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'gateway/main.ts'], {
      env: {
        PATH: process.env.PATH ?? '',
        NATS_URL: bus.nats.url,
        REDIS_URL: redisUrl(),
        GATEWAY_HOST: '127.0.0.1',
        GATEWAY_PORT: '0',
        LOG_LEVEL: 'info',
        TELEGRAM_BOT_TOKEN: BOT_TOKEN,
        TELEGRAM_API_ROOT: fake.url,
        TELEGRAM_WEBHOOK_SECRET: TELEGRAM_SECRET,
        RAZORPAY_WEBHOOK_SECRET: RAZORPAY_SECRET,
        RATE_LIMIT_PREFIX: redisPrefix(),
        OTEL_EXPORTER_OTLP_ENDPOINT: receiver.url,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.on('data', (c: Buffer) => (output += c.toString()));
    child.stderr?.on('data', (c: Buffer) => (output += c.toString()));
    let url = '';
    await eventually(
      'the gateway listens',
      () => {
        url = /"url":"(http:\/\/127\.0\.0\.1:\d+)"/.exec(output)?.[1] ?? '';
        return Promise.resolve(url !== '');
      },
      20_000,
    );
    expect(output).toContain('tracing on, exported over OTLP/HTTP');
    expect((await postUpdate(url, textUpdate(4242, 77, '/status'))).status).toBe(200);

    // Stopping flushes the batch processor.
    const gone = new Promise((r) => child!.once('exit', r));
    child.kill('SIGTERM');
    await gone;

    const mine = receiver.received.filter((r) => r.service.includes('respawn-gateway'));
    const spans = mine.flatMap((r) => r.spans);
    const webhook = spans.find((s) => s.name === 'POST /telegram/webhook');
    const publish = spans.find((s) => s.name === 'publish respawn.in.telegram');
    expect(webhook, `spans received: ${spans.map((s) => s.name).join(', ')}`).toBeDefined();
    expect(publish?.parentSpanId).toBe(webhook?.spanId);
    const scopes = new Set(mine.flatMap((r) => r.scopes));
    expect(scopes).toContain('@opentelemetry/instrumentation-http');
    expect(scopes).toContain('@opentelemetry/instrumentation-ioredis');
    // What the gateway stored carries the publish span's context to the router.
    const inbound = await stored(bus.jsm, Streams.ingress.name, ingressSubject('telegram'));
    const tp = inbound.find((m) => m.headers[HeaderNames.msgId] === 'tg-4242')?.headers[
      HeaderNames.traceparent
    ];
    expect(tp).toBe(`00-${publish?.traceId}-${publish?.spanId}-01`);
  });
});
