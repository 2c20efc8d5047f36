/**
 * Serves the sandbox chat page and forwards its `/_fake/*` calls to the Telegram fake (same
 * origin for the browser, so the fake needs no CORS).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { sandboxPage } from './sandbox-page.ts';

export interface Sandbox {
  url: string;
  stop(): Promise<void>;
}

const MAX_BODY = 64 * 1024;

async function readBody(req: http.IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of req) {
    size += (c as Buffer).length;
    if (size > MAX_BODY) return undefined;
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks);
}

export async function startSandbox(opts: {
  host: string;
  port: number;
  telegramUrl: string;
  log: Logger;
}): Promise<Sandbox> {
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://sandbox');
    if (req.method === 'GET' && (url.pathname === '/' || url.pathname === '/index.html')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      res.end(sandboxPage);
      return;
    }
    if (!url.pathname.startsWith('/_fake/chats')) {
      res.writeHead(404, { 'content-type': 'text/plain' });
      res.end('not found');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'POST') {
      opts.log.warn({ method: req.method, path: url.pathname }, 'sandbox: method refused');
      res.writeHead(405, { 'content-type': 'text/plain', allow: 'GET, POST' });
      res.end('only GET and POST');
      return;
    }
    void (async () => {
      const body = req.method === 'POST' ? await readBody(req) : undefined;
      if (req.method === 'POST' && body === undefined) {
        opts.log.warn({ path: url.pathname, limit: MAX_BODY }, 'sandbox: request body too large');
        res.writeHead(413, { 'content-type': 'text/plain' }).end(`body over ${MAX_BODY} bytes`);
        return;
      }
      let upstream: Response;
      try {
        upstream = await fetch(new URL(url.pathname + url.search, opts.telegramUrl), {
          method: req.method,
          headers: { 'content-type': 'application/json' },
          ...(body === undefined ? {} : { body }),
        });
      } catch (err) {
        opts.log.warn({ err }, 'sandbox: telegram fake unreachable');
        res
          .writeHead(502, { 'content-type': 'text/plain' })
          .end('the Telegram fake is unreachable');
        return;
      }
      const data = Buffer.from(await upstream.arrayBuffer());
      if (upstream.status >= 400) {
        opts.log.warn(
          { path: url.pathname, status: upstream.status, answer: data.toString('utf8', 0, 200) },
          'sandbox: the Telegram fake refused a request',
        );
      }
      res.writeHead(upstream.status, { 'content-type': 'application/json' });
      res.end(data);
    })().catch((err: unknown) => {
      // The browser went away mid-request, or the fake's answer broke off.
      opts.log.warn({ err, path: url.pathname }, 'sandbox: request failed');
      if (!res.headersSent) res.writeHead(502);
      res.end();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => resolve());
  });
  const { address, port } = server.address() as AddressInfo;
  const host = address.includes(':') ? `[${address}]` : address;
  return {
    url: `http://${host}:${port}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
