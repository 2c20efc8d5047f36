import { describe, expect, it } from 'vitest';
import { SessionPhases } from '../../contracts/index.ts';
import { initialSessionState, type SessionState } from './state.ts';
import { texts } from './texts.ts';

describe('what the player reads when a session stops', () => {
  it('gives a short session in seconds, never "0 minutes"', () => {
    expect(texts.stopped(1_400, 'player')).toMatch(/^Session stopped after 1 second:/);
    expect(texts.stopped(2 * 3_600_000 + 5 * 60_000, 'player')).toMatch(/after 2 h 5 min:/);
  });

  it('says why in words, and that nothing ran when the rig was never ready', () => {
    expect(texts.stopped(42_000, 'player')).toBe(
      'Session stopped after 42 seconds: you pressed Stop. Your disk is saved.',
    );
    expect(texts.stopped(30 * 60_000, 'out_of_credit')).toBe(
      'Session stopped after 30 minutes: your balance ran out; top up to play again. Your disk is saved.',
    );
    expect(texts.stopped(undefined, 'operator')).toBe(
      'Session stopped before your rig was ready: stopped by support. You were not charged.',
    );
    expect(texts.stopped(61_000, 'some_new_reason')).toBe(
      'Session stopped after 1 minute: some new reason. Your disk is saved.',
    );
    expect(texts.stopped(61_000, undefined)).toBe(
      'Session stopped after 1 minute. Your disk is saved.',
    );
  });
});

describe('what the player reads about a session in each phase', () => {
  const inPhase = (phase: SessionState['phase']): SessionState => ({
    ...initialSessionState(),
    phase,
    sessionId: 'p1-1',
    tier: 'spot',
    pricePerHourPaise: 3_000,
    queuePosition: 4,
    connect: { host: '10.0.0.4', port: 47989, pin: '1234' },
  });
  const jargon = /\b(provisioning|resuming|evicted|queued|idle)\b/;

  it.each(Object.values(SessionPhases))(
    'says %s in plain words, for /status and a second Play',
    (phase) => {
      const s = inPhase(phase);
      expect(texts.status(s)).not.toMatch(jargon);
      // A Play from idle starts a session: there is no "already" then.
      if (phase !== 'idle') expect(texts.already(s)).not.toMatch(jargon);
    },
  );

  it('tells a second Play what is going on and what to do', () => {
    expect(texts.already(inPhase('starting'))).toContain('already starting');
    expect(texts.already(inPhase('playing'))).toBe(
      'Your session is already playing: connect to 10.0.0.4:47989, PIN 1234.',
    );
    expect(texts.already(inPhase('queued'))).toContain('number 4');
    expect(texts.status(inPhase('provisioning'))).toBe('Your Spot rig at ₹30.00/hour is booting.');
  });
});
