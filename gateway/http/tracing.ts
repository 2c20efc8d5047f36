/**
 * The span of a webhook request. The HTTP instrumentation (contracts/telemetry.ts) makes the
 * server span when it could patch `node:http`; this names it after the route and adds the
 * source. Where it could not, a server span is made here, its parent any `traceparent` the
 * caller sent. Either way the handler runs with that span active, so the publish to RESPAWN_IN
 * is its child.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import {
  SpanKind,
  TraceAttributes,
  activeSpan,
  extractTrace,
  spanError,
  withSpan,
} from '../../contracts/index.ts';
import type { Source } from '../metrics.ts';

type Handler<R> = (request: FastifyRequest, reply: FastifyReply) => Promise<R>;

export function tracedRoute<R>(route: string, source: Source, handler: Handler<R>): Handler<R> {
  const name = `POST ${route}`;
  return (request, reply) => {
    const server = activeSpan();
    if (server?.isRecording() === true) {
      server.updateName(name);
      server.setAttributes({
        [TraceAttributes.httpRoute]: route,
        [TraceAttributes.ingressSource]: source,
      });
      return handler(request, reply);
    }
    return withSpan(
      name,
      {
        kind: SpanKind.SERVER,
        parent: extractTrace(request.headers),
        attributes: {
          [TraceAttributes.httpRoute]: route,
          [TraceAttributes.ingressSource]: source,
        },
      },
      async (span) => {
        const r = await handler(request, reply);
        span.setAttribute(TraceAttributes.httpStatus, reply.statusCode);
        if (reply.statusCode >= 500) spanError(span, `answered ${reply.statusCode}`);
        return r;
      },
    );
  };
}

/** `app.post` with each handler wrapped by `tracedRoute`. */
export function tracedPost(
  app: FastifyInstance,
  source: Source,
): <R>(route: string, handler: Handler<R>) => void {
  return (route, handler) => {
    app.post(route, tracedRoute(route, source, handler));
  };
}
