import { describe, expect, it } from 'vitest';
import { BillingRegister, BillingRegistered } from '../../contracts/index.ts';
import { BillingSim, MIN, T0 } from './testkit.ts';

describe('registration (/start)', () => {
  it('opens the account once, announced to operators, and remembers the chat each time', () => {
    const sim = new BillingSim();
    sim.send(BillingRegister, { chatId: '42' });
    expect(sim.state.registeredAt).toBe(T0.toISOString());
    expect(sim.state.chatId).toBe('42');
    expect(sim.sent(BillingRegistered)).toEqual([
      {
        type: BillingRegistered.type,
        playerId: '42',
        at: T0.toISOString(),
        subject: 'respawn.billing.42.evt.registered',
      },
    ]);
    // Again, later, from another chat: the chat moves, the account stays as it was opened.
    sim.advanceTo(new Date(T0.getTime() + 5 * MIN));
    sim.send(BillingRegister, { chatId: '43' });
    expect(sim.state.registeredAt).toBe(T0.toISOString());
    expect(sim.state.chatId).toBe('43');
    expect(sim.sent(BillingRegistered)).toHaveLength(1);
    expect(sim.state.balancePaise).toBe(0);
  });
});
