import { describe, expect, it } from 'vitest';
import {
  AgentReport,
  ErrorCodes,
  SessionAgentReady,
  SessionHeartbeat,
  SessionPreempt,
  TerminalError,
  agentToken,
} from '../../contracts/index.ts';
import { routeAgentReport } from './agent-route.ts';

const AT = '2026-03-01T18:00:00.000Z';
const base = { id: 'r1', vmName: 'vm-p1-1-a1-spotnc4', sessionId: 'p1-1', playerId: 'p1', at: AT };

describe('agent report routing', () => {
  it('turns ready into agent_ready on the player’s session subject', () => {
    const r = routeAgentReport(
      AgentReport.encode({ ...base, kind: 'ready', host: '10.0.0.4', port: 47989, pin: '1234' }),
    );
    expect(r.subject).toBe('respawn.session.p1.cmd.agent_ready');
    expect(r.msgId).toBe('agent-r1');
    expect(SessionAgentReady.decode(r.data)).toMatchObject({
      sessionId: 'p1-1',
      host: '10.0.0.4',
      pin: '1234',
    });
  });

  it('turns heartbeat and preempt into their commands', () => {
    const hb = routeAgentReport(
      AgentReport.encode({ ...base, kind: 'heartbeat', lastInputAt: AT }),
    );
    expect(hb.subject).toBe('respawn.session.p1.cmd.heartbeat');
    expect(SessionHeartbeat.decode(hb.data).lastInputAt).toBe(AT);
    const pre = routeAgentReport(
      AgentReport.encode({ ...base, id: 'r2', kind: 'preempt', eventId: 'ev-9', notBefore: AT }),
    );
    expect(pre.subject).toBe('respawn.session.p1.cmd.preempt');
    expect(SessionPreempt.decode(pre.data)).toMatchObject({ eventId: 'ev-9', notBefore: AT });
    expect(SessionPreempt.decode(pre.data).at).toBe(AT);
  });

  it('refuses a ready report without connection details, and garbage, as terminal errors', () => {
    const bad = (): unknown => routeAgentReport(AgentReport.encode({ ...base, kind: 'ready' }));
    expect(bad).toThrow(TerminalError);
    try {
      routeAgentReport(new TextEncoder().encode('{"type":"agent.report.v1","id":"x"}'));
    } catch (err) {
      expect((err as TerminalError).code).toBe(ErrorCodes.invalidPayload);
    }
  });

  it('refuses a report that speaks for another session or player than its VM’s', () => {
    // The gateway authenticated vm-p1-1-…; the report must not name p2's session, nor p1-1 as
    // another player's.
    for (const other of [
      { sessionId: 'p2-1', playerId: 'p2' },
      { sessionId: 'p1-1', playerId: 'p2' },
      { sessionId: 'p1-2', playerId: 'p1' },
    ]) {
      const spoof = (): unknown =>
        routeAgentReport(AgentReport.encode({ ...base, ...other, kind: 'heartbeat' }));
      expect(spoof).toThrow(TerminalError);
      expect(spoof).toThrow(/not its own/);
    }
  });

  it('derives a per-VM token that differs by VM and by master secret', () => {
    expect(agentToken('m', 'vm-a')).toBe(agentToken('m', 'vm-a'));
    expect(agentToken('m', 'vm-a')).not.toBe(agentToken('m', 'vm-b'));
    expect(agentToken('m2', 'vm-a')).not.toBe(agentToken('m', 'vm-a'));
  });
});
