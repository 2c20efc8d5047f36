/**
 * Reading a recording file (deploy/replay/format.ts): the header is checked at open, message
 * lines are parsed one at a time as they are iterated, so a day of traffic is never held in
 * memory. A line that does not parse is reported (with its line number) and skipped, never
 * thrown: one bad line must not stop a replay.
 */
import { createReadStream } from 'node:fs';
import { access } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { ZodError } from 'zod';
import {
  parseRecordedLine,
  parseRecordingHeader,
  type RecordedMessage,
  type RecordingHeader,
} from './format.ts';

/** The file cannot be replayed at all (missing, empty, not a recording). */
export class RecordingError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'RecordingError';
  }
}

export interface BadLine {
  /** 1-based line number in the file (the header is line 1). */
  line: number;
  reason: string;
}

export interface OpenRecordingOptions {
  /** Called for each message line that does not parse; the line is skipped. */
  onBadLine?: (bad: BadLine) => void;
}

const lineNumbers = new WeakMap<RecordedMessage, number>();

/** The file line a message was read from, when it came from `openRecording`. */
export function lineOf(message: RecordedMessage): number | undefined {
  return lineNumbers.get(message);
}

export function describeParseError(err: unknown): string {
  if (err instanceof ZodError) {
    return err.issues
      .slice(0, 3)
      .map((i) => `${i.path.join('.') || '(line)'}: ${i.message}`)
      .join('; ');
  }
  return err instanceof Error ? err.message : String(err);
}

async function* lines(path: string): AsyncGenerator<{ n: number; text: string }> {
  const rl = createInterface({
    input: createReadStream(path, { encoding: 'utf8' }),
    crlfDelay: Infinity,
  });
  let n = 0;
  try {
    for await (const text of rl) {
      n++;
      if (text.trim().length > 0) yield { n, text };
    }
  } finally {
    rl.close();
  }
}

export async function openRecording(
  path: string,
  opts: OpenRecordingOptions = {},
): Promise<{ header: RecordingHeader; messages: AsyncIterable<RecordedMessage>; count: number }> {
  try {
    await access(path);
  } catch (err) {
    throw new RecordingError(`cannot read recording ${path}: ${describeParseError(err)}`, {
      cause: err,
    });
  }
  let header: RecordingHeader | undefined;
  let count = 0;
  // One pass to check the header and count the messages (for progress and ETA).
  for await (const { n, text } of lines(path)) {
    if (header === undefined) {
      try {
        header = parseRecordingHeader(text);
      } catch (err) {
        throw new RecordingError(
          `${path} line ${n} is not a recording header: ${describeParseError(err)}`,
          { cause: err },
        );
      }
      continue;
    }
    count++;
  }
  if (header === undefined) throw new RecordingError(`${path} is empty: no recording header`);
  const found = header;
  async function* messages(): AsyncGenerator<RecordedMessage> {
    let seenHeader = false;
    for await (const { n, text } of lines(path)) {
      if (!seenHeader) {
        seenHeader = true;
        continue;
      }
      let m: RecordedMessage;
      try {
        m = parseRecordedLine(text);
      } catch (err) {
        opts.onBadLine?.({ line: n, reason: describeParseError(err) });
        continue;
      }
      lineNumbers.set(m, n);
      yield m;
    }
  }
  return { header: found, messages: messages(), count };
}
