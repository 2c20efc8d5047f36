/**
 * One definition per message kind: a zod schema, its inferred type, a versioned type name and
 * a decode that validates. Sender and receiver import the same object.
 */
import { z } from 'zod';
import { ErrorCodes, TerminalError } from './errors.ts';

/** Larger payloads are dead-lettered unread; commands and events are small. */
export const MAX_PAYLOAD_BYTES = 64 * 1024;

const TYPE_NAME = /^[a-z][a-z0-9]*(\.[a-z][a-z0-9_]*)+\.v[1-9][0-9]*$/;

export interface MessageDef<T extends string = string, P = unknown> {
  readonly type: T;
  readonly schema: z.ZodType<P & { type: T }>;
  /** Fills in `type`, validates, and serialises. Throws on an invalid value (a sender's bug). */
  encode(value: P): Uint8Array;
  /** Validates untrusted bytes. Throws a TerminalError with a catalogue code. */
  decode(data: Uint8Array): P & { type: T };
}

export type MessageOf<D> = D extends MessageDef<infer T, infer P> ? P & { type: T } : never;

const encoder = new TextEncoder();
const decoder = new TextDecoder('utf-8', { fatal: true });

export function defineMessage<const T extends string, S extends z.ZodRawShape>(
  type: T,
  shape: S,
): MessageDef<T, z.infer<z.ZodObject<S>>> {
  if (!TYPE_NAME.test(type)) throw new Error(`message type ${type} is not <area>.<name>.v<N>`);
  const schema = z.object({ ...shape, type: z.literal(type) });
  type P = z.infer<z.ZodObject<S>>;
  return {
    type,
    schema: schema as unknown as z.ZodType<P & { type: T }>,
    encode(value: P): Uint8Array {
      const full = schema.parse({ ...value, type });
      return encoder.encode(JSON.stringify(full));
    },
    decode(data: Uint8Array): P & { type: T } {
      const raw = parseJson(data);
      return validate(schema, raw, type) as P & { type: T };
    },
  };
}

/** Bytes → JSON value, with the size limit; TerminalError otherwise. */
export function parseJson(data: Uint8Array): unknown {
  if (data.byteLength > MAX_PAYLOAD_BYTES) {
    throw new TerminalError(
      ErrorCodes.payloadTooLarge,
      `payload is ${data.byteLength} bytes, the limit is ${MAX_PAYLOAD_BYTES}`,
    );
  }
  let text: string;
  try {
    text = decoder.decode(data);
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new TerminalError(ErrorCodes.invalidJson, 'payload is not UTF-8 JSON', err);
  }
}

function validate(schema: z.ZodType, raw: unknown, type: string): unknown {
  const r = schema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues
      .slice(0, 5)
      .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
      .join('; ');
    throw new TerminalError(ErrorCodes.invalidPayload, `invalid ${type}: ${issues}`, r.error);
  }
  return r.data;
}

/**
 * A closed set of message kinds a consumer accepts, decoded by their `type` field.
 * Unknown types are a TerminalError, never a cast.
 */
export interface MessageSet<D extends MessageDef> {
  readonly defs: readonly D[];
  readonly types: readonly string[];
  decode(data: Uint8Array): MessageOf<D>;
}

export function messageSet<const D extends MessageDef>(defs: readonly D[]): MessageSet<D> {
  const byType = new Map<string, D>(defs.map((d) => [d.type, d]));
  return {
    defs,
    types: [...byType.keys()],
    decode(data: Uint8Array): MessageOf<D> {
      const raw = parseJson(data);
      const t = typeof raw === 'object' && raw !== null && 'type' in raw ? raw.type : undefined;
      const def = typeof t === 'string' ? byType.get(t) : undefined;
      if (def === undefined) {
        throw new TerminalError(
          ErrorCodes.unknownType,
          `message type ${JSON.stringify(t)} is not one of ${[...byType.keys()].join(', ')}`,
        );
      }
      return validate(def.schema, raw, def.type) as MessageOf<D>;
    },
  };
}
