/**
 * The agent's one HTTP client, for IMDS and the gateway alike: node:http(s) with a deadline,
 * an abort signal, an optional CA to trust (the ARM fake's self-signed IMDS) and a cap on the
 * answer's size. No proxy is ever used: IMDS must be reached directly, as Azure requires.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';

const MAX_ANSWER_BYTES = 1024 * 1024;

export interface HttpAnswer {
  status: number;
  headers: IncomingHttpHeaders;
  text: string;
}

export interface HttpOptions {
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** PEM of a CA to trust besides the system's. */
  ca?: string;
  timeoutMs: number;
  signal?: AbortSignal;
}

/** Rejects on a network error, the deadline or the signal; any HTTP status resolves. */
export function httpRequest(url: string | URL, opts: HttpOptions): Promise<HttpAnswer> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const client = u.protocol === 'https:' ? https : http;
  const body = opts.body === undefined ? undefined : Buffer.from(opts.body, 'utf8');
  return new Promise((resolve, reject) => {
    const req = client.request(
      u,
      {
        method: opts.method ?? 'GET',
        agent: false,
        headers: {
          ...(body === undefined ? {} : { 'content-length': String(body.length) }),
          ...opts.headers,
        },
        ...(opts.ca === undefined ? {} : { ca: opts.ca }),
        ...(opts.signal === undefined ? {} : { signal: opts.signal }),
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_ANSWER_BYTES) req.destroy(new Error('answer too large'));
          else chunks.push(c);
        });
        res.on('end', () => {
          clearTimeout(timer);
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            text: Buffer.concat(chunks).toString('utf8'),
          });
        });
        res.on('error', (err) => {
          clearTimeout(timer);
          reject(err);
        });
      },
    );
    const timer = setTimeout(
      () => req.destroy(new Error(`no answer within ${opts.timeoutMs} ms`)),
      opts.timeoutMs,
    );
    req.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.end(body);
  });
}

/** Retry-After (seconds or an HTTP date) in milliseconds, if given. */
export function retryAfterMs(headers: IncomingHttpHeaders, now: number): number | undefined {
  const v = headers['retry-after'];
  if (typeof v !== 'string' || v.trim() === '') return undefined;
  const seconds = Number(v);
  if (Number.isFinite(seconds)) return Math.max(0, seconds * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}
