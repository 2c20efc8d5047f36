/**
 * Starting and stopping tracing in a process (contracts/telemetry.ts has the helpers every hop
 * uses): the OTEL_* configuration, the tracer provider with the W3C propagator, the OTLP/HTTP
 * exporter when an endpoint is configured, and the HTTP, PostgreSQL and Redis
 * instrumentations.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import {
  DiagLogLevel,
  context,
  diag,
  propagation,
  trace,
  type Attributes,
  type DiagLogger,
  type Span,
} from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { SpanProcessor } from '@opentelemetry/sdk-trace-node';
import { REDACTED } from './redact.ts';

export interface TelemetryConfig {
  serviceName: string;
  /** The OTLP/HTTP traces URL; undefined: spans are made but not exported. */
  tracesUrl: string | undefined;
  /** `OTEL_SDK_DISABLED=true`: no provider at all (the no-op API). */
  disabled: boolean;
}

export class TelemetryConfigError extends Error {
  constructor(readonly problems: string[]) {
    super(`invalid telemetry configuration: ${problems.join('; ')}`);
    this.name = 'TelemetryConfigError';
  }
}

function httpUrl(name: string, value: string, problems: string[]): URL | undefined {
  try {
    const u = new URL(value);
    if (u.protocol === 'http:' || u.protocol === 'https:') return u;
  } catch {
    // reported below
  }
  problems.push(`${name} must be an http(s) URL, got '${value}'`);
  return undefined;
}

/**
 * Reads OTEL_SERVICE_NAME, OTEL_EXPORTER_OTLP_TRACES_ENDPOINT (the full traces URL),
 * OTEL_EXPORTER_OTLP_ENDPOINT (a base URL, `/v1/traces` appended), OTEL_TRACES_EXPORTER
 * (`otlp` or `none`) and OTEL_SDK_DISABLED. Throws a TelemetryConfigError naming each bad one.
 */
export function loadTelemetryConfig(
  env: Readonly<Record<string, string | undefined>>,
  defaultServiceName: string,
): TelemetryConfig {
  const problems: string[] = [];
  const v = (k: string): string | undefined => {
    const s = env[k]?.trim();
    return s === undefined || s === '' ? undefined : s;
  };
  const serviceName = v('OTEL_SERVICE_NAME') ?? defaultServiceName;
  const disabledRaw = v('OTEL_SDK_DISABLED') ?? 'false';
  if (disabledRaw !== 'true' && disabledRaw !== 'false')
    problems.push(`OTEL_SDK_DISABLED must be true or false, got '${disabledRaw}'`);
  const exporterRaw = v('OTEL_TRACES_EXPORTER') ?? 'otlp';
  if (exporterRaw !== 'otlp' && exporterRaw !== 'none')
    problems.push(`OTEL_TRACES_EXPORTER must be otlp or none, got '${exporterRaw}'`);
  let tracesUrl: string | undefined;
  const traces = v('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  const base = v('OTEL_EXPORTER_OTLP_ENDPOINT');
  if (traces !== undefined) {
    tracesUrl = httpUrl('OTEL_EXPORTER_OTLP_TRACES_ENDPOINT', traces, problems)?.toString();
  }
  if (base !== undefined) {
    const u = httpUrl('OTEL_EXPORTER_OTLP_ENDPOINT', base, problems);
    if (u !== undefined && tracesUrl === undefined) {
      tracesUrl = `${u.toString().replace(/\/+$/, '')}/v1/traces`;
    }
  }
  if (problems.length > 0) throw new TelemetryConfigError(problems);
  return {
    serviceName,
    tracesUrl: exporterRaw === 'none' ? undefined : tracesUrl,
    disabled: disabledRaw === 'true',
  };
}

/** What the set-up logs through (a pino logger fits). */
export interface TelemetryLog {
  info(obj: object, msg: string): void;
  warn(obj: object, msg: string): void;
}

export interface TelemetryOptions {
  config: TelemetryConfig;
  log: TelemetryLog;
  /** More processors (tests: a SimpleSpanProcessor over an InMemorySpanExporter). */
  spanProcessors?: SpanProcessor[];
  /** Register the HTTP, PostgreSQL and Redis instrumentations (default true). */
  instrument?: boolean;
}

export interface Telemetry {
  /** Whether spans leave the process (an OTLP endpoint is configured). */
  readonly exporting: boolean;
  forceFlush(): Promise<void>;
  /** Flushes what is buffered, then restores the no-op API. */
  shutdown(): Promise<void>;
}

/** A Telegram bot token in a URL path (`/bot<id>:<secret>/sendMessage`). */
const BOT_TOKEN_IN_PATH = /\/bot\d+:[^/?#]+/g;

/**
 * The HTTP instrumentation records each request's URL: the Bot API's carries the bot token in
 * its path. Rewrites `url.full` and `url.path` once the span has them (the SDK span keeps its
 * attributes readable).
 */
function redactUrlAttributes(span: Span): void {
  const attrs = (span as unknown as { attributes?: Attributes }).attributes ?? {};
  for (const key of ['url.full', 'url.path']) {
    const v = attrs[key];
    if (typeof v !== 'string') continue;
    const redacted = v.replace(BOT_TOKEN_IN_PATH, `/bot${REDACTED}`);
    if (redacted !== v) span.setAttribute(key, redacted);
  }
}

/** Paths never worth a span: probes and scrapes (every few seconds), and OTLP itself. */
const UNTRACED_PATHS = /^\/(healthz|readyz|metrics)(\?|$)|\/v1\/traces(\?|$)/;

/**
 * Modules an instrumentation patches that an ES module graph may have loaded before
 * telemetry started (entry points import them statically, and ESM imports bypass `require`
 * hooks). Requiring them again after registration lets require-in-the-middle patch their
 * shared exports in place; `syncBuiltinESMExports` then updates ESM bindings of `node:http`.
 */
const PATCH_AFTER_LOAD = ['node:http', 'node:https', 'http', 'https', 'pg', 'ioredis'];

function repatchLoadedModules(): void {
  const req = createRequire(import.meta.url);
  for (const name of PATCH_AFTER_LOAD) {
    try {
      req(name);
    } catch {
      // Not installed here: nothing to patch.
    }
  }
  syncBuiltinESMExports();
}

function diagLogger(log: TelemetryLog): DiagLogger {
  const warn = (message: string, ...args: unknown[]): void =>
    log.warn({ otel: args.map((a) => (a instanceof Error ? a.message : String(a))) }, message);
  const ignore = (): void => undefined;
  return { error: warn, warn, info: ignore, debug: ignore, verbose: ignore };
}

/**
 * Starts tracing for this process. Call once, before serving; `shutdown` at exit. The SDK,
 * exporter and instrumentations are loaded here, not by every importer of contracts/.
 */
export async function startTelemetry(opts: TelemetryOptions): Promise<Telemetry> {
  const { config, log } = opts;
  if (config.disabled) {
    log.info({ service: config.serviceName }, 'telemetry disabled (OTEL_SDK_DISABLED)');
    return {
      exporting: false,
      forceFlush: () => Promise.resolve(),
      shutdown: () => Promise.resolve(),
    };
  }
  const [
    { NodeTracerProvider, BatchSpanProcessor, AlwaysOffSampler },
    { OTLPTraceExporter },
    { registerInstrumentations },
    { HttpInstrumentation },
    { PgInstrumentation },
    { IORedisInstrumentation },
    { resourceFromAttributes },
    { ATTR_SERVICE_NAME },
  ] = await Promise.all([
    import('@opentelemetry/sdk-trace-node'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/instrumentation'),
    import('@opentelemetry/instrumentation-http'),
    import('@opentelemetry/instrumentation-pg'),
    import('@opentelemetry/instrumentation-ioredis'),
    import('@opentelemetry/resources'),
    import('@opentelemetry/semantic-conventions'),
  ]);
  diag.setLogger(diagLogger(log), DiagLogLevel.WARN);
  const processors: SpanProcessor[] = [...(opts.spanProcessors ?? [])];
  if (config.tracesUrl !== undefined) {
    processors.push(new BatchSpanProcessor(new OTLPTraceExporter({ url: config.tracesUrl })));
  }
  // With nowhere for spans to go, none is recorded: a recorded span that nobody reads cost
  // most of a busy process's CPU (bench:e2e: p50 2.9 s with, 67 ms without, at 500/s). Trace
  // ids are still made and propagated (unsampled), so log lines keep correlating.
  const recording = processors.length > 0;
  const provider = new NodeTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: config.serviceName }),
    spanProcessors: processors,
    ...(recording ? {} : { sampler: new AlwaysOffSampler() }),
  });
  provider.register({ propagator: new W3CTraceContextPropagator() });
  let uninstrument = (): void => undefined;
  // The instrumentations only add spans (of HTTP, PostgreSQL and Redis calls): not when none
  // is recorded.
  if ((opts.instrument ?? true) && recording) {
    uninstrument = registerInstrumentations({
      tracerProvider: provider,
      instrumentations: [
        new HttpInstrumentation({
          ignoreIncomingRequestHook: (req) => UNTRACED_PATHS.test(req.url ?? ''),
          requestHook: (span) => redactUrlAttributes(span),
        }),
        // Sweeps poll PostgreSQL every few hundred ms: only queries inside a span are traced.
        new PgInstrumentation({ requireParentSpan: true }),
        new IORedisInstrumentation({ requireParentSpan: true }),
      ],
    });
    repatchLoadedModules();
  }
  log.info(
    { service: config.serviceName, otlp: config.tracesUrl ?? null },
    config.tracesUrl !== undefined
      ? 'tracing on, exported over OTLP/HTTP'
      : recording
        ? 'tracing on, not exported (no OTEL_EXPORTER_OTLP_ENDPOINT)'
        : 'trace ids only, no span recorded (no OTEL_EXPORTER_OTLP_ENDPOINT)',
  );
  let done: Promise<void> | undefined;
  return {
    exporting: config.tracesUrl !== undefined,
    forceFlush: () => provider.forceFlush(),
    shutdown() {
      done ??= (async () => {
        uninstrument();
        try {
          await provider.shutdown();
        } catch (err) {
          log.warn({ err }, 'telemetry shutdown: spans may be lost');
        }
        trace.disable();
        context.disable();
        propagation.disable();
        diag.disable();
      })();
      return done;
    },
  };
}
