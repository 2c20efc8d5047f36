/**
 * What the agent learns from the VM itself: whether the streaming host (Sunshine) answers on
 * its port, how long the player has been idle, and where the pairing PIN is left for
 * Sunshine's setup to read.
 */
import { execFile } from 'node:child_process';
import { randomInt } from 'node:crypto';
import { mkdir, rename, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import path from 'node:path';
import type { Logger } from 'pino';

/** True once a TCP connection to host:port is accepted within `timeoutMs`. */
export function tcpAnswers(host: string, port: number, timeoutMs: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host, port });
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), timeoutMs);
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}

/** A Moonlight-style four-digit PIN (leading zeros kept). */
export function newPin(): string {
  return String(randomInt(0, 10_000)).padStart(4, '0');
}

/**
 * Writes the PIN atomically (a reader never sees half a PIN), readable by the agent's user and
 * group only: Sunshine's setup reads it as a member of the agent's group.
 */
export async function writePin(file: string, pin: string): Promise<void> {
  await mkdir(path.dirname(file), { recursive: true, mode: 0o750 });
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${pin}\n`, { mode: 0o640 });
  await rename(tmp, file);
}

/** Milliseconds since the player's last input, or undefined when it cannot be told. */
export type IdleSource = () => Promise<number | undefined>;

/**
 * Runs `command` (split on spaces; e.g. `xprintidle`, which prints idle milliseconds of the X
 * display in DISPLAY) and reads one integer. A missing command, a failure or odd output gives
 * undefined, logged once as a warning (then at debug) so a VM without it is not flooded.
 */
export function commandIdleSource(command: string, log: Logger, timeoutMs = 2_000): IdleSource {
  const [file, ...args] = command.trim().split(/\s+/);
  let warned = false;
  const fail = (reason: string): undefined => {
    if (!warned) log.warn({ command, reason }, 'idle source unavailable; heartbeats without input');
    else log.debug({ command, reason }, 'idle source unavailable');
    warned = true;
    return undefined;
  };
  return () =>
    new Promise((resolve) => {
      if (file === undefined || file === '') {
        resolve(undefined);
        return;
      }
      execFile(file, args, { timeout: timeoutMs, maxBuffer: 4096 }, (err, stdout) => {
        if (err !== null) {
          resolve(fail(err.message.split('\n')[0] ?? 'failed'));
          return;
        }
        const text = stdout.trim();
        if (!/^\d+$/.test(text)) {
          resolve(fail(`not a number of milliseconds: ${text.slice(0, 40)}`));
          return;
        }
        warned = false;
        resolve(Number(text));
      });
    });
}

/** No idle source configured: heartbeats carry no lastInputAt. */
export const noIdleSource: IdleSource = () => Promise.resolve(undefined);
