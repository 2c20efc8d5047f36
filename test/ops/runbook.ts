/**
 * The runbook's commands as the test runs them: docs/operations.md's `sh` blocks parsed into
 * argument vectors (as a POSIX shell splits them), and each `nats` CLI command the runbook uses
 * translated to the JavaScript client, doing what the CLI does (the same JetStream API calls),
 * so the test can assert what an operator would see. `npm run …` commands run as they are.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  type ConsumerInfo,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection, type Subscription } from '@nats-io/transport-node';
import { repoPath } from '../deploy/support.ts';

export interface RunbookCommand {
  /** The command as written (continuations joined, comment dropped). */
  text: string;
  argv: string[];
  /** The `##` section it appears under. */
  section: string;
}

/**
 * Splits one shell line into words: single quotes keep everything, double quotes keep all but
 * `\"` and `\\`, a backslash outside quotes escapes the next character, and `#` at the start of
 * a word begins a comment.
 */
export function shellWords(line: string): string[] {
  const words: string[] = [];
  let word: string | undefined;
  for (let i = 0; i < line.length; i++) {
    const c = line[i]!;
    if (c === "'") {
      const end = line.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unterminated ' in: ${line}`);
      word = (word ?? '') + line.slice(i + 1, end);
      i = end;
    } else if (c === '"') {
      let j = i + 1;
      let s = '';
      for (; j < line.length && line[j] !== '"'; j++) {
        if (line[j] === '\\' && (line[j + 1] === '"' || line[j + 1] === '\\')) j++;
        s += line[j];
      }
      if (j >= line.length) throw new Error(`unterminated " in: ${line}`);
      word = (word ?? '') + s;
      i = j;
    } else if (c === '\\') {
      word = (word ?? '') + (line[i + 1] ?? '');
      i++;
    } else if (/\s/.test(c)) {
      if (word !== undefined) words.push(word);
      word = undefined;
    } else if (c === '#' && word === undefined) {
      break;
    } else {
      word = (word ?? '') + c;
    }
  }
  if (word !== undefined) words.push(word);
  return words;
}

/** Every command of the page's fenced `sh` blocks, in order. */
export function runbookCommands(markdown: string): RunbookCommand[] {
  const out: RunbookCommand[] = [];
  let section = '';
  let inSh = false;
  let pending = '';
  for (const line of markdown.split('\n')) {
    if (!inSh && line.startsWith('## ')) section = line.slice(3).trim();
    if (/^```/.test(line)) {
      if (inSh && pending.trim() !== '') throw new Error(`dangling continuation: ${pending}`);
      inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(line);
      continue;
    }
    if (!inSh) continue;
    // A backslash at the end of a line continues the command on the next one.
    if (/\\$/.test(line)) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = pending + line;
    pending = '';
    const argv = shellWords(full);
    if (argv.length === 0) continue;
    out.push({ text: argv.join(' '), argv, section });
  }
  return out;
}

export function loadRunbook(): RunbookCommand[] {
  return runbookCommands(readFileSync(repoPath('docs/operations.md'), 'utf8'));
}

/** The `nats` CLI, when installed: the test then runs it too (it is not installed here). */
export function natsCliAvailable(): boolean {
  const r = spawnSync('nats', ['--version'], { stdio: 'ignore' });
  return r.status === 0;
}

export function runNatsCli(url: string, args: readonly string[]): { status: number; out: string } {
  const r = spawnSync('nats', ['--server', url, ...args], { encoding: 'utf8', timeout: 20_000 });
  return { status: r.status ?? -1, out: `${r.stdout}${r.stderr}` };
}

// --- the CLI commands, through the JavaScript client -----------------------------------------

export interface Seen {
  subject: string;
  data: string;
}

/** `nats sub SUBJECT`: a core subscription; what it printed so far. */
export interface Watch {
  subject: string;
  seen: Seen[];
  stop(): void;
}

export function natsSub(nc: NatsConnection, subject: string): Watch {
  const sub: Subscription = nc.subscribe(subject);
  const seen: Seen[] = [];
  void (async () => {
    for await (const m of sub) seen.push({ subject: m.subject, data: m.string() });
  })();
  return { subject, seen, stop: () => sub.unsubscribe() };
}

/** `nats pub SUBJECT BODY`: a core publish, as the CLI does (the stream captures it). */
export async function natsPub(nc: NatsConnection, subject: string, body: string): Promise<void> {
  nc.publish(subject, body);
  await nc.flush();
}

export interface Stored {
  seq: number;
  subject: string;
  data: string;
}

/**
 * `nats stream view STREAM --subject S`: every stored message on S, oldest first, through an
 * ephemeral consumer that acknowledges nothing (the CLI's view is such a consumer too).
 */
export async function natsStreamView(
  nc: NatsConnection,
  stream: string,
  subject: string,
): Promise<Stored[]> {
  const jsm = await jetstreamManager(nc);
  const ci = await jsm.consumers.add(stream, {
    filter_subject: subject,
    ack_policy: AckPolicy.None,
    deliver_policy: DeliverPolicy.All,
    inactive_threshold: nanos(30_000),
  });
  const out: Stored[] = [];
  if (ci.num_pending === 0) return out;
  const c = await jetstream(nc).consumers.get(stream, ci.name);
  const iter = await c.fetch({ max_messages: ci.num_pending, expires: 10_000 });
  for await (const m of iter) {
    out.push({ seq: m.seq, subject: m.subject, data: m.string() });
    if ((m.info.pending ?? 0) === 0) break;
  }
  await jsm.consumers.delete(stream, ci.name).catch(() => undefined);
  return out;
}

/** `nats stream get STREAM --last-for S`: the last message stored on S (a direct read). */
export async function natsStreamGetLastFor(
  nc: NatsConnection,
  stream: string,
  subject: string,
): Promise<Stored | undefined> {
  const jsm = await jetstreamManager(nc);
  const m = await jsm.streams.getMessage(stream, { last_by_subj: subject }).catch(() => null);
  return m === null ? undefined : { seq: m.seq, subject: m.subject, data: m.string() };
}

/** `nats stream info STREAM`. */
export async function natsStreamInfo(nc: NatsConnection, stream: string): Promise<StreamInfo> {
  return (await jetstreamManager(nc)).streams.info(stream);
}

/** `nats stream ls`: every stream's name and message count. */
export async function natsStreamLs(
  nc: NatsConnection,
): Promise<{ name: string; messages: number }[]> {
  const out: { name: string; messages: number }[] = [];
  for await (const s of (await jetstreamManager(nc)).streams.list()) {
    out.push({ name: s.config.name, messages: s.state.messages });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

export interface ReportRow {
  name: string;
  /** "Unprocessed": stored, not yet delivered (the lag). */
  unprocessed: number;
  ackPending: number;
  redelivered: number;
  maxAckPending: number;
  ackWaitMs: number;
}

const row = (c: ConsumerInfo): ReportRow => ({
  name: c.name,
  unprocessed: c.num_pending,
  ackPending: c.num_ack_pending,
  redelivered: c.num_redelivered,
  maxAckPending: c.config.max_ack_pending ?? -1,
  ackWaitMs: (c.config.ack_wait ?? 0) / 1_000_000,
});

/** `nats consumer report STREAM`: one row per consumer. */
export async function natsConsumerReport(nc: NatsConnection, stream: string): Promise<ReportRow[]> {
  const out: ReportRow[] = [];
  for await (const c of (await jetstreamManager(nc)).consumers.list(stream)) out.push(row(c));
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

/** `nats consumer info STREAM CONSUMER`. */
export async function natsConsumerInfo(
  nc: NatsConnection,
  stream: string,
  consumer: string,
): Promise<ReportRow & { deliveredStreamSeq: number; ackFloorStreamSeq: number }> {
  const c = await (await jetstreamManager(nc)).consumers.info(stream, consumer);
  return {
    ...row(c),
    deliveredStreamSeq: c.delivered.stream_seq,
    ackFloorStreamSeq: c.ack_floor.stream_seq,
  };
}

/** `npm run …` as written, from the repository root, against the given server. */
export function runNpm(
  argv: readonly string[],
  natsUrl: string,
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const [cmd, ...args] = argv;
  if (cmd !== 'npm') throw new Error(`not an npm command: ${argv.join(' ')}`);
  return new Promise((resolve, reject) => {
    const child = spawn('npm', args, {
      cwd: repoPath('.'),
      env: { ...process.env, NATS_URL: natsUrl },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString('utf8')));
    child.once('error', reject);
    child.once('exit', (code) => resolve({ code, stdout, stderr }));
  });
}
