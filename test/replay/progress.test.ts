/**
 * What a replay shows while it runs (deploy/replay/progress.ts): a bar with sent/total, rate,
 * errors and ETA, redrawn in place on a terminal, plain lines every few seconds otherwise,
 * and each error on its own line with where it came from.
 */
import { describe, expect, it } from 'vitest';
import {
  formatProgress,
  formatSummary,
  progressPrinter,
  type ProgressOutput,
} from '../../deploy/replay/progress.ts';

function capture(isTTY: boolean): ProgressOutput & { text: () => string } {
  let buf = '';
  return {
    isTTY,
    write(t: string) {
      buf += t;
      return true;
    },
    text: () => buf,
  };
}

const at = '2026-11-20T19:00:00.000Z';

describe('replay progress', () => {
  it('shows the bar, sent of total, rate, errors and ETA', () => {
    const line = formatProgress(
      { sent: 480, total: 1000, errors: 20, ratePerS: 123.4, etaS: 125, recordedTime: at },
      10,
    );
    expect(line).toBe(`[#####.....] 50%  480/1000 sent  123/s  20 errors  ETA 2m05s  at ${at}`);
    // Reading a stream of unknown length: no bar, no percentage.
    expect(
      formatProgress({
        sent: 7,
        total: undefined,
        errors: 0,
        ratePerS: 3,
        etaS: undefined,
        recordedTime: '',
      }),
    ).toBe('7 sent  3/s  0 errors  ETA --');
  });

  it('redraws one line on a terminal and clears it before an error and at the end', () => {
    const out = capture(true);
    const p = progressPrinter(out);
    const step = { total: 10, errors: 0, ratePerS: 5, etaS: 1, recordedTime: at };
    p.progress({ ...step, sent: 1 });
    p.progress({ ...step, sent: 2 });
    p.error({ line: 7, reason: 'not JSON' });
    p.finish();
    const text = out.text();
    expect(text.split('\r\x1b[2K[')).toHaveLength(3); // two bars drawn
    expect(text).toContain('\r\x1b[2Kerror: line 7: not JSON\n');
    expect(text.endsWith('\n')).toBe(true);
  });

  it('prints plain lines no more often than asked, and always the last one', () => {
    const out = capture(false);
    const p = progressPrinter(out, { plainEveryMs: 60_000 });
    const step = { total: 3, errors: 0, ratePerS: 5, etaS: 1, recordedTime: at };
    p.progress({ ...step, sent: 1 });
    p.progress({ ...step, sent: 2 }); // within the minute: not printed
    p.progress({ ...step, sent: 3 }); // the last: printed
    const lines = out.text().trimEnd().split('\n');
    expect(lines).toHaveLength(2);
    expect(lines[0]).toContain('1/3 sent');
    expect(lines[1]).toContain('3/3 sent');
    expect(out.text()).not.toContain('\r');
  });

  it('sums a replay up with its speed over real time and every error counted', () => {
    expect(
      formatSummary(
        { sent: 900, errors: 2, wallMs: 10_000, recordedSpanMs: 1_000_000, duplicates: 5 },
        3,
      ),
    ).toBe(
      'replayed 900 messages (5 already stored) in 10.0 s; recorded span 1000.0 s (100.0x real time); errors 5 (3 unreadable lines)',
    );
  });
});
