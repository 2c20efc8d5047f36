/**
 * Progress of a replay on stderr: a redrawn bar on a terminal, plain lines every few seconds
 * otherwise (CI logs, files). Errors are printed as they happen, with their line number.
 */
import type { ReplayError, ReplayProgress, ReplaySummary } from './play.ts';

export interface ProgressOutput {
  write(text: string): boolean;
  isTTY?: boolean;
}

export interface ProgressPrinter {
  progress(p: ReplayProgress): void;
  error(e: ReplayError | { line: number; reason: string }): void;
  /** Clears the bar (a terminal) before the summary is printed. */
  finish(): void;
}

function duration(s: number | undefined): string {
  if (s === undefined || !Number.isFinite(s)) return '--';
  if (s < 60) return `${Math.ceil(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(Math.ceil(s % 60)).padStart(2, '0')}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, '0')}m`;
}

/** One status line: bar (when the total is known), sent/total, rate, errors, ETA, time. */
export function formatProgress(p: ReplayProgress, width = 24): string {
  const parts: string[] = [];
  if (p.total !== undefined && p.total > 0) {
    const done = Math.min(1, (p.sent + p.errors) / p.total);
    const fill = Math.round(done * width);
    parts.push(`[${'#'.repeat(fill)}${'.'.repeat(width - fill)}] ${Math.floor(done * 100)}%`);
    parts.push(`${p.sent}/${p.total} sent`);
  } else {
    parts.push(`${p.sent} sent`);
  }
  parts.push(`${p.ratePerS.toFixed(0)}/s`);
  parts.push(`${p.errors} errors`);
  parts.push(`ETA ${duration(p.etaS)}`);
  if (p.recordedTime !== '') parts.push(`at ${p.recordedTime}`);
  return parts.join('  ');
}

export function formatSummary(s: ReplaySummary, badLines = 0): string {
  const speedup = s.wallMs > 0 ? s.recordedSpanMs / s.wallMs : 0;
  return [
    `replayed ${s.sent} messages (${s.duplicates} already stored) in ${(s.wallMs / 1000).toFixed(1)} s`,
    `recorded span ${(s.recordedSpanMs / 1000).toFixed(1)} s (${speedup.toFixed(1)}x real time)`,
    `errors ${s.errors + badLines}${badLines > 0 ? ` (${badLines} unreadable lines)` : ''}`,
  ].join('; ');
}

export function progressPrinter(
  out: ProgressOutput,
  opts: { plainEveryMs?: number } = {},
): ProgressPrinter {
  const tty = out.isTTY === true;
  const everyMs = opts.plainEveryMs ?? 5_000;
  let lastPlain = Number.NEGATIVE_INFINITY;
  let drawn = false;
  const clear = (): void => {
    if (tty && drawn) out.write('\r\x1b[2K');
    drawn = false;
  };
  return {
    progress(p) {
      if (tty) {
        out.write(`\r\x1b[2K${formatProgress(p)}`);
        drawn = true;
        return;
      }
      const now = performance.now();
      const last = p.total !== undefined && p.sent + p.errors >= p.total;
      if (!last && now - lastPlain < everyMs) return;
      lastPlain = now;
      out.write(`${formatProgress(p)}\n`);
    },
    error(e) {
      clear();
      const where = e.line === undefined ? 'message' : `line ${e.line}`;
      const what = 'subject' in e && e.subject !== '' ? ` (${e.subject}, seq ${e.seq})` : '';
      out.write(`error: ${where}${what}: ${e.reason}\n`);
    },
    finish() {
      clear();
    },
  };
}
