/**
 * Generates the AsyncAPI 3.0.0 document of the bus from contracts/ (the catalog, the zod
 * schemas, the header names): `npm run asyncapi` writes docs/asyncapi.json. Output is
 * deterministic (sorted keys, prettier-formatted) so a test can compare it with the
 * checked-in file.
 */
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { z } from 'zod';
import {
  Catalog,
  ChannelParameters,
  Components,
  DeadLetterRoute,
  ErrorCodes,
  HeaderNames,
  MAX_PAYLOAD_BYTES,
  PARTITIONS,
  ROOT,
  RawCatalog,
  type CatalogRoute,
  type Component,
} from '../../contracts/index.ts';

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
type JsonObject = { [key: string]: Json };

export const ASYNCAPI_FILE = fileURLToPath(new URL('../../docs/asyncapi.json', import.meta.url));

const TOKEN_PATTERN = '^[A-Za-z0-9_-]{1,128}$';
const TRACEPARENT = '^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$';

const headerDocs: Record<string, JsonObject> = {
  [HeaderNames.msgId]: {
    type: 'string',
    maxLength: 256,
    description:
      'JetStream de-duplication id (2-minute window) and the consumer inbox key: publish the same logical command with the same id and it has one effect.',
  },
  [HeaderNames.traceparent]: {
    type: 'string',
    pattern: TRACEPARENT,
    description: 'W3C trace context, carried across every hop.',
  },
  [HeaderNames.tracestate]: { type: 'string', description: 'W3C trace state.' },
  [HeaderNames.causationId]: {
    type: 'string',
    description: 'The message id of the input whose handling emitted this message.',
  },
  [HeaderNames.dlqReason]: { type: 'string', description: 'Why the message was dead-lettered.' },
  [HeaderNames.dlqCode]: {
    type: 'string',
    description: 'The error code (also the last subject token).',
  },
  [HeaderNames.dlqSubject]: { type: 'string', description: 'The subject the original came on.' },
  [HeaderNames.dlqStream]: { type: 'string', description: 'The stream that stored the original.' },
  [HeaderNames.dlqStreamSeq]: {
    type: 'string',
    pattern: '^\\d+$',
    description: "The original's stream sequence.",
  },
  [HeaderNames.dlqDeliveries]: {
    type: 'string',
    pattern: '^\\d+$',
    description: 'How many times the original was delivered.',
  },
  [HeaderNames.dlqActor]: { type: 'string', description: 'The actor kind that refused it.' },
  [HeaderNames.dlqMsgId]: {
    type: 'string',
    description: "The original's Nats-Msg-Id (the dead letter has its own).",
  },
};

function headersSchema(typeName: string | undefined, deadLetter: boolean): JsonObject {
  const names: string[] = [
    HeaderNames.msgId,
    HeaderNames.traceparent,
    HeaderNames.tracestate,
    HeaderNames.causationId,
  ];
  if (deadLetter) {
    names.push(...Object.values(HeaderNames).filter((h) => h.startsWith('Respawn-Dlq-')));
  }
  const properties: JsonObject = {};
  for (const n of names) properties[n] = headerDocs[n] ?? { type: 'string' };
  if (typeName !== undefined) {
    properties[HeaderNames.type] = {
      type: 'string',
      const: typeName,
      description: 'The versioned message type (equals the payload `type`).',
    };
  } else if (deadLetter) {
    properties[HeaderNames.type] = {
      type: 'string',
      description: "The original's versioned message type, when it had one.",
    };
  }
  return {
    type: 'object',
    properties,
    ...(deadLetter ? { required: [HeaderNames.dlqCode, HeaderNames.dlqReason] } : {}),
  };
}

/** A channel id from its address: `respawn.session.{playerId}.cmd.stop` → `session-cmd-stop`. */
export function channelId(address: string): string {
  return address
    .split('.')
    .slice(1)
    .filter((t) => !t.startsWith('{'))
    .join('-');
}

function parametersOf(r: CatalogRoute): JsonObject | undefined {
  const names = [...r.channel.matchAll(/\{([A-Za-z]+)\}/g)].map((m) => m[1] ?? '');
  if (names.length === 0) return undefined;
  const out: JsonObject = {};
  for (const n of names) {
    const values = r.enums?.[n];
    out[n] = {
      description: `${ChannelParameters[n] ?? n}. A subject token: 1-128 of A-Z a-z 0-9 _ - (no '.', '*', '>' or spaces).`,
      'x-pattern': TOKEN_PATTERN,
      ...(values === undefined ? {} : { enum: [...values] }),
    };
  }
  return out;
}

/**
 * zod → JSON Schema (draft-07, the AsyncAPI schema format's base), as a publisher sees it
 * (`io: input`: fields with defaults are optional). Local definitions move to
 * components.schemas so that every `$ref` resolves from the document root.
 */
function payloadSchema(name: string, schema: z.ZodType, shared: JsonObject): JsonObject {
  const raw = z.toJSONSchema(schema, { target: 'draft-7', io: 'input' }) as JsonObject;
  const { $schema: _drop, definitions, ...rest } = raw;
  const rename = (def: string): string => `${name}_${def.replace(/^_+/, '')}`;
  const rewrite = (v: Json): Json => {
    if (Array.isArray(v)) return v.map(rewrite);
    if (v === null || typeof v !== 'object') return v;
    const o: JsonObject = {};
    for (const [k, x] of Object.entries(v)) {
      o[k] =
        k === '$ref' && typeof x === 'string' && x.startsWith('#/definitions/')
          ? `#/components/schemas/${rename(x.slice('#/definitions/'.length))}`
          : rewrite(x);
    }
    return o;
  };
  if (definitions !== undefined && definitions !== null && typeof definitions === 'object') {
    for (const [k, d] of Object.entries(definitions)) shared[rename(k)] = rewrite(d);
  }
  return rewrite(rest) as JsonObject;
}

interface Channel {
  address: string;
  stream: string;
  parameters: JsonObject | undefined;
  messages: Set<string>;
  sends: Map<Component, Set<string>>;
  receives: Map<Component, Set<string>>;
}

function addRoute(channels: Map<string, Channel>, r: CatalogRoute, message: string): void {
  const id = channelId(r.channel);
  let ch = channels.get(id);
  if (ch === undefined) {
    ch = {
      address: r.channel,
      stream: r.stream,
      parameters: parametersOf(r),
      messages: new Set(),
      sends: new Map(),
      receives: new Map(),
    };
    channels.set(id, ch);
  } else if (ch.address !== r.channel || ch.stream !== r.stream) {
    throw new Error(`channel id ${id} is used by ${ch.address} and ${r.channel}`);
  }
  ch.messages.add(message);
  for (const [list, into] of [
    [r.publishers, ch.sends],
    [r.consumers, ch.receives],
  ] as const) {
    for (const c of list) {
      const set = into.get(c) ?? new Set<string>();
      set.add(message);
      into.set(c, set);
    }
  }
}

/** The AsyncAPI 3.0.0 document, as a plain JSON value with sorted keys. */
export function buildAsyncApi(version = '0.1.0'): JsonObject {
  const messages: JsonObject = {};
  const schemas: JsonObject = {};
  const channels = new Map<string, Channel>();
  for (const e of Catalog) {
    if (messages[e.name] !== undefined) throw new Error(`${e.name} is in the catalog twice`);
    messages[e.name] = {
      name: e.type,
      title: e.type,
      summary: e.summary,
      contentType: 'application/json',
      headers: headersSchema(e.type, false),
      payload: payloadSchema(e.name, e.schema, schemas),
    };
    for (const r of e.routes) addRoute(channels, r, e.name);
  }
  for (const e of RawCatalog) {
    messages[e.name] = {
      name: e.name,
      title: e.title,
      summary: e.summary,
      contentType: 'application/json',
      headers: headersSchema(undefined, false),
      payload: payloadSchema(e.name, e.schema, schemas),
    };
    addRoute(channels, e.route, e.name);
  }
  messages.DeadLetter = {
    name: 'DeadLetter',
    title: 'Dead letter',
    summary: 'The original payload and headers of a message that could not be used, plus why',
    description: `The payload is the original bytes, unchanged (usually JSON, but it may be anything a publisher sent, up to the server's limit; consumers refuse payloads over ${MAX_PAYLOAD_BYTES} bytes). Codes: ${Object.values(ErrorCodes).join(', ')}.`,
    contentType: 'application/json',
    headers: headersSchema(undefined, true),
    payload: { description: 'The original payload, unchanged.' },
  };
  addRoute(channels, DeadLetterRoute, 'DeadLetter');

  const channelsOut: JsonObject = {};
  const operations: JsonObject = {};
  for (const [id, ch] of channels) {
    const msgRefs: JsonObject = {};
    for (const m of ch.messages) msgRefs[m] = { $ref: `#/components/messages/${m}` };
    const isCommand = ch.address.split('.')[3] === 'cmd';
    channelsOut[id] = {
      address: ch.address,
      title: ch.address,
      description: isCommand
        ? `Publish to this subject; the server maps it to \`${ch.address}.<partition>\` (FNV-1a of the key mod ${PARTITIONS}) and stream ${ch.stream} stores it. Never publish to the mapped subject yourself.`
        : `Stored by stream ${ch.stream}.`,
      'x-stream': ch.stream,
      messages: msgRefs,
      ...(ch.parameters === undefined ? {} : { parameters: ch.parameters }),
    };
    for (const [action, byComponent] of [
      ['send', ch.sends],
      ['receive', ch.receives],
    ] as const) {
      for (const [component, names] of byComponent) {
        operations[`${component}-${action}-${id}`] = {
          action,
          title: `${component} ${action === 'send' ? 'publishes on' : 'consumes'} ${ch.address}`,
          channel: { $ref: `#/channels/${id}` },
          messages: [...names].sort().map((m) => ({ $ref: `#/channels/${id}/messages/${m}` })),
          tags: [{ name: component }],
        };
      }
    }
  }

  return sortKeys({
    asyncapi: '3.0.0',
    info: {
      title: 'Respawn bus',
      version,
      description: `The NATS JetStream subjects of Respawn (generated from contracts/ by \`npm run asyncapi\`; do not edit by hand). Payloads are JSON with a versioned \`type\`; every consumer validates what it receives and dead-letters what it cannot use on \`${ROOT}.dlq.<origin>.<code>\`. Operations are tagged with the component that performs them.`,
    },
    defaultContentType: 'application/json',
    servers: {
      nats: {
        host: 'localhost:4222',
        protocol: 'nats',
        description:
          'A NATS server (2.9 or newer) with JetStream and the subject mapping of deploy/nats/respawn.conf.',
      },
    },
    channels: channelsOut,
    operations,
    components: {
      messages,
      schemas,
      tags: Object.fromEntries(Object.values(Components).map((c) => [c, { name: c }])),
    },
  }) as JsonObject;
}

/** Objects with keys in code-point order, at every depth; arrays keep their order. */
export function sortKeys(v: Json): Json {
  if (Array.isArray(v)) return v.map(sortKeys);
  if (v === null || typeof v !== 'object') return v;
  const out: JsonObject = {};
  for (const k of Object.keys(v).sort()) out[k] = sortKeys(v[k] ?? null);
  return out;
}

/** The document as checked in: sorted, pretty-printed with the repository's prettier config. */
export async function renderAsyncApi(): Promise<string> {
  const options = (await prettier.resolveConfig(ASYNCAPI_FILE)) ?? {};
  return prettier.format(JSON.stringify(buildAsyncApi()), { ...options, filepath: ASYNCAPI_FILE });
}

async function main(): Promise<void> {
  await writeFile(ASYNCAPI_FILE, await renderAsyncApi());
  process.stdout.write(`wrote ${path.relative(process.cwd(), ASYNCAPI_FILE)}\n`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  main().catch((err: unknown) => {
    process.stderr.write(`${String(err)}\n`);
    process.exit(1);
  });
}
